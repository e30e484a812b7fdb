"""Namespaces: which ones a process gets, and the unshare/setns calls.

Mount, pid, ipc, uts and cgroup namespaces are always new; the network
namespace is new (and empty but for a down `lo`) unless the layout says
`host` (keep the supervisor's) or `netns:NAME` (join /var/run/netns/NAME).
"""

from __future__ import annotations

import os

from privsep.sandbox import _libc

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

ALWAYS = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP

NETNS_DIR = "/var/run/netns"


def unshare(flags: int) -> None:
    _libc.check(_libc.call("unshare", flags), f"unshare({flags:#x})")


def setns_path(path: str, nstype: int) -> None:
    """Join the namespace bound at `path` (e.g. /var/run/netns/NAME)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _libc.check(_libc.call("setns", fd, nstype), f"setns {path}")
    finally:
        os.close(fd)


def setns_fd(fd: int, nstype: int) -> None:
    _libc.check(_libc.call("setns", fd, nstype), "setns")


def user_namespaces_available() -> bool:
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            return int(f.read()) > 0
    except (OSError, ValueError):
        return False


def enter_user_namespace(uid: int, gid: int) -> None:
    """Move into a new user namespace where `uid`/`gid` map to themselves outside.

    A process cannot give its own new user namespace an arbitrary map, so a
    short-lived child, still privileged in the parent namespace, writes it
    once we have unshared. Capabilities held afterwards count only inside the
    new namespace: over nothing the host owns (its network namespace, files of
    unmapped owners, ...).
    """
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        try:
            os.close(ready_w)
            os.read(ready_r, 1)
            parent = os.getppid()
            for name, ident in (("uid_map", uid), ("gid_map", gid)):
                with open(f"/proc/{parent}/{name}", "w") as f:
                    f.write(f"{ident} {ident} 1\n")
        except BaseException:
            os._exit(1)
        os._exit(0)
    os.close(ready_r)
    try:
        unshare(CLONE_NEWUSER)
    finally:
        os.write(ready_w, b"u")
        os.close(ready_w)
    _, status = os.waitpid(child, 0)
    if status != 0:
        raise OSError(0, "could not write the user namespace's uid/gid maps")


def netns_path(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"bad network namespace name {name!r}")
    return f"{NETNS_DIR}/{name}"
