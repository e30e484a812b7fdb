"""Capabilities: the name table, and dropping to exactly the granted sets.

Order matters and follows what the kernel allows after a uid change:

1. before setuid: `PR_SET_KEEPCAPS` so the permitted set survives the uid change,
   and the bounding set is reduced to the grant (dropping needs CAP_SETPCAP,
   which we still hold as root);
2. setresgid/setresuid to the target;
3. capset: permitted = effective = inheritable = the grant (inheritable is
   needed for ambient);
4. raise each granted cap in the ambient set, so an exec'ed command keeps them;
5. lock securebits: NOROOT, NO_SETUID_FIXUP, KEEP_CAPS off, NO_CAP_AMBIENT_RAISE,
   each with its _LOCKED bit. Locking needs CAP_SETPCAP, so this happens
   before step 3 drops it (the bits persist).
"""

from __future__ import annotations

import os

from privsep.sandbox import _libc

CAPABILITIES: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_KEEPCAPS = 8
PR_SET_SECUREBITS = 28
PR_GET_SECUREBITS = 27
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

SECBIT_NOROOT = 1 << 0
SECBIT_NOROOT_LOCKED = 1 << 1
SECBIT_NO_SETUID_FIXUP = 1 << 2
SECBIT_NO_SETUID_FIXUP_LOCKED = 1 << 3
SECBIT_KEEP_CAPS = 1 << 4
SECBIT_KEEP_CAPS_LOCKED = 1 << 5
SECBIT_NO_CAP_AMBIENT_RAISE = 1 << 6
SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 7

# Everything set and locked; KEEP_CAPS itself stays off (locked off).
LOCKED_SECUREBITS = (
    SECBIT_NOROOT
    | SECBIT_NOROOT_LOCKED
    | SECBIT_NO_SETUID_FIXUP
    | SECBIT_NO_SETUID_FIXUP_LOCKED
    | SECBIT_KEEP_CAPS_LOCKED
    | SECBIT_NO_CAP_AMBIENT_RAISE
    | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED
)

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _prctl(option: int, arg2: int = 0, arg3: int = 0, what: str = "prctl") -> int:
    return _libc.check(_libc.call("prctl", option, arg2, arg3, 0, 0), what)


def mask(names: tuple[str, ...] | list[str] | frozenset[str]) -> int:
    """The bit mask of capability `names` (unknown names raise KeyError)."""
    bits = 0
    for name in names:
        bits |= 1 << CAPABILITIES[name]
    return bits


_last_cap: list[int] = []


def last_cap() -> int:
    """The highest capability number the running kernel knows (read once)."""
    if not _last_cap:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _last_cap.append(int(f.read()))
        except OSError:
            _last_cap.append(max(CAPABILITIES.values()))
    return _last_cap[0]


def set_keepcaps(on: bool) -> None:
    _prctl(PR_SET_KEEPCAPS, int(on), what="PR_SET_KEEPCAPS")


def drop_bounding(keep: int) -> None:
    """Remove every capability not in `keep` from the bounding set."""
    for cap in range(last_cap() + 1):
        if not keep & (1 << cap):
            _prctl(PR_CAPBSET_DROP, cap, what=f"PR_CAPBSET_DROP {cap}")


def lock_securebits() -> None:
    _prctl(PR_SET_SECUREBITS, LOCKED_SECUREBITS, what="PR_SET_SECUREBITS")


def _capset(permitted: int, effective: int, inheritable: int) -> None:
    # struct __user_cap_header_struct {u32 version; int pid;} and two
    # struct __user_cap_data_struct {u32 effective, permitted, inheritable;}
    header = _LINUX_CAPABILITY_VERSION_3.to_bytes(4, "little") + bytes(4)
    data = b""
    for shift in (0, 32):
        for bits in (effective, permitted, inheritable):
            data += ((bits >> shift) & 0xFFFFFFFF).to_bytes(4, "little")
    _libc.check(_libc.call("capset", header, data), "capset")


def drop_privileges(uid: int, gid: int, keep: int) -> None:
    """Become uid/gid holding exactly `keep` (bounding, permitted, effective, inheritable,
    ambient), with securebits locked so nothing can regain root's powers."""
    setpcap = 1 << CAPABILITIES["CAP_SETPCAP"]
    drop_bounding(keep)
    set_keepcaps(True)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    # Still permitted (KEEPCAPS), no longer effective: take back what the next steps need.
    _capset(keep | setpcap, keep | setpcap, keep)
    set_keepcaps(False)
    for cap in range(last_cap() + 1):
        if keep & (1 << cap):
            _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, what=f"PR_CAP_AMBIENT_RAISE {cap}")
    lock_securebits()  # after the ambient raise: NO_CAP_AMBIENT_RAISE forbids it
    _capset(keep, keep, keep)
