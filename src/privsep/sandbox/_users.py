"""Dynamic users: an unprivileged uid per running sandboxed process.

Picked from 61184-65519, the range of systemd's DynamicUser=, and kept unique
among everything privsep runs on the host by an `flock` on
/run/privsep/users/UID, held by the spawner until it has seen the process exit.
"""

from __future__ import annotations

import fcntl
import os

DYNAMIC_UIDS = range(61184, 65520)


class NoFreeUid(OSError):
    pass


def allocate(directory: str) -> tuple[int, int]:
    """A free uid and the fd whose lock reserves it (close the fd to release it)."""
    span = len(DYNAMIC_UIDS)
    start = (os.getpid() * 7919 + os.urandom(2)[0] * 31) % span
    for i in range(span):
        uid = DYNAMIC_UIDS[(start + i) % span]
        fd = os.open(f"{directory}/{uid}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return uid, fd
    raise NoFreeUid(0, "no free dynamic uid")
