"""The sandbox's root filesystem: tmpfs root, read-only binds, /proc, /dev, pivot_root.

Runs in the child, inside its new mount and pid namespaces. The spawner has
already turned the layout into a list of operations (see `_plan.py`):

    ("bind", source, target, writable)   bind source (file or dir) at target
    ("symlink", link_target, path)       e.g. /lib -> usr/lib on merged-/usr hosts
    ("tmpfs", target, options)           a fresh tmpfs (used for /tmp)
    ("proc", target)                     procfs of the new pid namespace
    ("dev", target, nodes)               a tmpfs with only `nodes` bound from the host
    ("readonly", target)                 an existing path (e.g. /proc/sys) made read-only

Intermediate directories are created on the tmpfs with mode 0755, so a bound
path stays reachable for an unprivileged uid even when its host parents are
not (pyenv interpreters under /root, mode 0700). Read-only binds are
read-only recursively (mount_setattr), and every bind is nosuid and nodev.
"""

# ruff: noqa: PTH103, PTH110, PTH112, PTH120, PTH211 - os paths: pathlib would cost start-up time of every sandboxed process

from __future__ import annotations

import os

from privsep.sandbox import _libc

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
AT_FDCWD = -100
AT_RECURSIVE = 0x8000


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    rc = _libc.call(
        "mount",
        source.encode() if source is not None else None,
        target.encode(),
        fstype.encode() if fstype is not None else None,
        flags,
        data.encode() if data is not None else None,
    )
    _libc.check(rc, f"mount {source} on {target}")


class Mounter:
    """Builds the new root at `staging`, then pivots into it."""

    def __init__(self, staging: str, numbers: dict[str, int]) -> None:
        self.staging = staging
        self.nr = numbers

    def _setattr(self, path: str, attrs: int, recursive: bool) -> None:
        # struct mount_attr {u64 attr_set, attr_clr, propagation, userns_fd}
        attr = attrs.to_bytes(8, "little") + bytes(24)
        rc = _libc.call(
            "syscall",
            self.nr["mount_setattr"],
            AT_FDCWD,
            path.encode(),
            AT_RECURSIVE if recursive else 0,
            attr,
            32,
        )
        if rc == -1:
            if _libc.errno() != 38:  # ENOSYS: kernels before 5.12
                _libc.check(rc, f"mount_setattr {path}")
            flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV
            mount(None, path, None, flags | (MS_RDONLY if attrs & MOUNT_ATTR_RDONLY else 0))

    def _dir(self, target: str) -> str:
        path = self.staging + target
        os.makedirs(path, mode=0o755, exist_ok=True)
        return path

    def _mountpoint(self, source: str, target: str) -> str:
        path = self.staging + target
        if os.path.isdir(source):
            return self._dir(target)
        if not os.path.lexists(path):
            self._dir(os.path.dirname(target))
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
        return path

    def bind(self, source: str, target: str, writable: bool, device: bool = False) -> None:
        path = self._mountpoint(source, target)
        mount(source, path, None, MS_BIND | MS_REC)
        if device:
            return  # a device node: keeps its mount's flags; /dev around it is read-only
        attrs = MOUNT_ATTR_NOSUID | (MOUNT_ATTR_NOEXEC if device else MOUNT_ATTR_NODEV)
        attrs |= 0 if writable else MOUNT_ATTR_RDONLY
        self._setattr(path, attrs, recursive=True)

    def build(self, operations: list[tuple[object, ...]]) -> None:
        # Nothing we do here may propagate back to the host's mounts.
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        os.makedirs(self.staging, mode=0o755, exist_ok=True)
        mount("tmpfs", self.staging, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
        for op in operations:
            kind = op[0]
            if kind == "bind":
                _, source, target, writable = op
                self.bind(str(source), str(target), bool(writable))
            elif kind == "symlink":
                _, link_target, path = op
                self._dir(os.path.dirname(str(path)))
                os.symlink(str(link_target), self.staging + str(path))
            elif kind == "tmpfs":
                _, target, options = op
                flags = MS_NOSUID | MS_NODEV
                mount("tmpfs", self._dir(str(target)), "tmpfs", flags, str(options))
            elif kind == "proc":
                _, target = op
                flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
                mount("proc", self._dir(str(target)), "proc", flags)
            elif kind == "readonly":
                _, target = op
                path = self.staging + str(target)
                if not os.path.exists(path):
                    continue  # e.g. /proc/sysrq-trigger without CONFIG_MAGIC_SYSRQ
                mount(path, path, None, MS_BIND | MS_REC)
                attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
                self._setattr(path, attrs, recursive=True)
            elif kind == "dev":
                _, target, nodes = op
                assert isinstance(nodes, list | tuple)
                self._dev(str(target), [str(n) for n in nodes])
            else:
                raise ValueError(f"unknown mount operation {kind!r}")

    def _dev(self, target: str, nodes: list[str]) -> None:
        path = self._dir(target)
        mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
        for node in nodes:
            self.bind(f"/dev/{node}", f"{target}/{node}", writable=True, device=True)
        for name, link in (
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ):
            os.symlink(link, f"{path}/{name}")
        self._setattr(
            path, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, recursive=False
        )

    def pivot(self) -> None:
        """Make the staging root `/`, drop the old root, make `/` read-only."""
        os.chdir(self.staging)
        _libc.check(_libc.call("syscall", self.nr["pivot_root"], b".", b"."), "pivot_root")
        # The old root is stacked on top of the new one at "/": detach it.
        _libc.check(_libc.call("umount2", b".", MNT_DETACH), "umount old root")
        os.chdir("/")
        self._setattr(
            "/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, recursive=False
        )
