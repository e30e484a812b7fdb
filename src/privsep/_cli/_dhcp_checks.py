"""`privsep dhcp`'s checks of what it is pointed at, made before anything starts.

A bad interface, hook script or pid file must be one `error:` line and exit 2 at
once, not a supervisor that restarts its processes until it gives up; and two
clients must never drive one interface.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import socket
import stat
import struct
from pathlib import Path

from privsep._cli import CliError

_SIOCGIFHWADDR = 0x8927
_ARPHRD_ETHER = 1
_LOCK_DIR = Path("/run/privsep/dhcp")


def check_netns_name(name: str) -> None:
    if "/" in name or name in (".", "..") or not Path("/run/netns", name).exists():
        raise CliError(f"no network namespace {name!r} (ip netns list)", code=2)


def is_own_netns(name: str) -> bool:
    """Whether the network namespace `name` is the one this process runs in (a name
    attached to the host's own namespace, say)."""
    theirs = Path("/run/netns", name).stat()
    ours = Path("/proc/self/ns/net").stat()
    return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)


def check_interface(netns: str, interface: str) -> None:
    """The interface exists (in `netns`, if given) and is an Ethernet one: the client
    needs a hardware address for its packets and ARP (not lo, not a tun device)."""
    kind: list[int] = []

    def look() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack("16s16x", interface.encode())
            try:
                reply = fcntl.ioctl(sock.fileno(), _SIOCGIFHWADDR, request)
            except OSError:
                return  # ENODEV: no such interface
            kind.append(struct.unpack_from("H", reply, 16)[0])

    if netns:
        from privsep.sandbox._resources import in_netns  # noqa: PLC0415

        in_netns(netns, look, what="--netns")
    else:
        look()
    where = f" in network namespace {netns!r}" if netns else ""
    if not kind:
        raise CliError(f"no interface {interface!r}{where}", code=2)
    if kind[0] != _ARPHRD_ETHER:
        raise CliError(f"{interface}{where} is not an Ethernet interface", code=2)


def check_script(path: Path) -> None:
    """The hook runs as an unprivileged uid: it must be able to read and execute it."""
    try:
        info = path.stat()
    except OSError:
        raise CliError(f"-s {path}: no such file", code=2) from None
    if not stat.S_ISREG(info.st_mode):
        raise CliError(f"-s {path}: not a regular file", code=2)
    # The file itself is bound into the hook's sandbox (its directories are not: they
    # are made there), so only its own mode matters.
    others = stat.S_IROTH | stat.S_IXOTH
    if info.st_mode & others != others:
        raise CliError(
            f"-s {path}: must be readable and executable by others "
            "(the hook runs as an unprivileged uid)",
            code=2,
        )


def check_pidfile_dir(path: Path) -> None:
    if not path.parent.is_dir():
        raise CliError(f"-p {path}: No such file or directory", code=2)
    if path.is_dir():
        raise CliError(f"-p {path}: Is a directory", code=2)


def lock_interface(netns: str, interface: str) -> None:
    """An exclusive lock on the interface (per network namespace) for this process's
    life, whatever its state dir. The lock file is removed at exit (a test run leaves
    no trail of them in /run); a lock taken on a file that was removed meanwhile is
    retried on the new one, so two clients can never both hold one."""
    # Keyed by the namespace itself (its nsfs inode), not by a name: one namespace may
    # be attached under two names, and the host's under one too.
    ns = Path(f"/run/netns/{netns}" if netns else "/proc/self/ns/net").stat()
    directory = _LOCK_DIR / f"netns-{ns.st_dev:x}-{ns.st_ino:x}"
    path = directory / f"{interface}.lock"
    while True:
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            where = f" (network namespace {netns})" if netns else ""
            raise CliError(
                f"interface {interface}{where} is in use by another privsep dhcp", code=2
            ) from None
        try:
            current = path.stat().st_ino
        except FileNotFoundError:
            current = -1
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)  # its holder removed it on exit: lock the new one
    atexit.register(_unlock, path, fd)


def _unlock(path: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        path.unlink()  # while still locked: a newcomer then creates a fresh file
    os.close(fd)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # the namespace's directory, if no other lock is in it


def sweep_stale_locks() -> list[Path]:
    """Remove the interface locks no client holds (left by one killed with SIGKILL,
    which runs no exit handler); returns their directories. A client that opened such
    a file just now sees it was removed (`lock_interface`'s inode check) and retries."""
    removed = []
    for path in sorted(_LOCK_DIR.glob("*/*.lock")):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # held: a client runs
            continue
        _unlock(path, fd)
        removed.append(path.parent)
    return removed
