"""Resource limits by layout name (soft = hard: the process cannot raise them back).

Numbers are Linux's generic ones (the same on every architecture privsep runs
on), so the exec helper needs neither `resource` nor `ctypes` to apply them.
"""

from __future__ import annotations

from privsep.sandbox import _libc

RLIMITS: dict[str, int] = {
    "cpu": 0,
    "fsize": 1,
    "data": 2,
    "stack": 3,
    "core": 4,
    "rss": 5,
    "nproc": 6,
    "nofile": 7,
    "memlock": 8,
    "as": 9,
    "locks": 10,
    "sigpending": 11,
    "msgqueue": 12,
    "nice": 13,
    "rtprio": 14,
    "rttime": 15,
}


def apply(limits: list[tuple[int, int]]) -> None:
    """Set each (resource, value) as both soft and hard limit (lowering needs no
    privilege; raising above the current hard limit needs CAP_SYS_RESOURCE)."""
    for res, value in limits:
        # struct rlimit {rlim_t rlim_cur, rlim_max;}
        limit = value.to_bytes(8, "little") * 2
        _libc.check(_libc.call("setrlimit", res, limit), f"setrlimit {res} {value}")
