"""Seccomp: syscall names through libseccomp2, the filter compiled once, loaded last.

The spawner compiles the filter with libseccomp (ctypes) and hands the BPF
program to the exec helper, which loads it with seccomp(2) as its very last
lock (`_lock.py`): the sandboxed process never maps libseccomp, and the
compile is cached per policy. The filter (see docs/sandbox.md):

- default action ERRNO(ENOSYS): a syscall the policy does not know looks absent,
  so libc falls back (clone3 → clone, statx → fstatat, ...);
- allowed syscalls: ALLOW; `clone` only without namespace flags (a namespace
  flag gets EPERM); `ioctl` only for a short list of harmless requests unless
  the layout lists `ioctl` itself;
- deliberately denied syscalls: ERRNO(EPERM);
- native architecture only: another architecture, and on x86_64 the x32 ABI
  (syscall numbers with bit 30 set), gets libseccomp's bad-architecture action,
  ERRNO(EPERM).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from collections.abc import Iterable

SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_ACT_ERRNO_BASE = 0x00050000
SCMP_FLTATR_ACT_BADARCH = 2
SCMP_FLTATR_CTL_OPTIMIZE = 8  # libseccomp >= 2.5; 2 = binary tree of syscall numbers
SCMP_CMP_EQ = 4
SCMP_CMP_MASKED_EQ = 7

# Namespace-creating clone flags (CLONE_NEWTIME shares its bit with the exit signal in
# clone(2), so it cannot be filtered there; unshare and clone3 are not allowed at all).
CLONE_NAMESPACE_FLAGS = 0x7E020000

# ioctl requests a Python component makes on its own fds; notably not TIOCSTI.
SAFE_IOCTLS = (
    0x5401,  # TCGETS (isatty)
    0x5413,  # TIOCGWINSZ
    0x541B,  # FIONREAD
    0x5421,  # FIONBIO
    0x5450,  # FIONCLEX
    0x5451,  # FIOCLEX
    0x8933,  # SIOCGIFINDEX
    0x8910,  # SIOCGIFNAME
    0x8927,  # SIOCGIFHWADDR
    0x8921,  # SIOCGIFMTU
)


def act_errno(err: int) -> int:
    return _SCMP_ACT_ERRNO_BASE | (err & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = (
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


class SeccompError(OSError):
    pass


@functools.cache
def _lib() -> ctypes.CDLL:
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_init.argtypes = (ctypes.c_uint32,)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_release.argtypes = (ctypes.c_void_p,)
    lib.seccomp_release.restype = None
    lib.seccomp_attr_set.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32)
    lib.seccomp_rule_add_array.argtypes = (
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    )
    lib.seccomp_export_bpf.argtypes = (ctypes.c_void_p, ctypes.c_int)
    return lib


@functools.cache
def available() -> bool:
    """Whether libseccomp2 loads and the kernel filters syscalls (Seccomp field present)."""
    try:
        _lib()
        with open("/proc/self/status") as f:
            return "Seccomp_filters:" in f.read()
    except OSError:
        return False


@functools.cache
def syscall_number(name: str) -> int | None:
    """The native-architecture number of syscall `name`, or None if unknown."""
    if not name or not name.replace("_", "").isalnum():
        return None
    number: int = _lib().seccomp_syscall_resolve_name(name.encode())
    return number if number >= 0 else None


def _rule(ctx: int, action: int, number: int, *cmps: _ArgCmp) -> None:
    array = (_ArgCmp * max(1, len(cmps)))(*cmps)
    rc = _lib().seccomp_rule_add_array(ctx, action, number, len(cmps), array)
    if rc < 0:
        raise SeccompError(-rc, f"seccomp rule for syscall {number}: {os.strerror(-rc)}")


def compile_filter(allow: Iterable[str], deny: Iterable[str], *, any_ioctl: bool = False) -> bytes:
    """The BPF program (struct sock_filter array) for this policy; cached."""
    return _compile(frozenset(allow), frozenset(deny), any_ioctl)


@functools.cache
def _compile(allow: frozenset[str], deny: frozenset[str], any_ioctl: bool) -> bytes:
    lib = _lib()
    ctx = lib.seccomp_init(act_errno(errno.ENOSYS))
    if not ctx:
        raise SeccompError(errno.ENOMEM, "seccomp_init failed")
    try:
        rc = lib.seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, act_errno(errno.EPERM))
        if rc < 0:
            raise SeccompError(-rc, "seccomp: cannot set the bad-architecture action")
        # A binary search instead of a linear chain: every later syscall of the component
        # runs this program, so its length matters more than the compile.
        lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)
        for name in sorted(deny - allow):
            number = syscall_number(name)
            if number is not None:
                _rule(ctx, act_errno(errno.EPERM), number)
        for name in sorted(allow):
            number = syscall_number(name)
            if number is None:
                continue
            if name == "clone":
                ns = CLONE_NAMESPACE_FLAGS
                _rule(ctx, SCMP_ACT_ALLOW, number, _ArgCmp(0, SCMP_CMP_MASKED_EQ, ns, 0))
                for bit in range(32):
                    if ns & (1 << bit):
                        flag = _ArgCmp(0, SCMP_CMP_MASKED_EQ, 1 << bit, 1 << bit)
                        _rule(ctx, act_errno(errno.EPERM), number, flag)
            elif name == "ioctl" and not any_ioctl:
                for request in SAFE_IOCTLS:
                    _rule(ctx, SCMP_ACT_ALLOW, number, _ArgCmp(1, SCMP_CMP_EQ, request, 0))
            else:
                _rule(ctx, SCMP_ACT_ALLOW, number)
        fd = os.memfd_create("seccomp-bpf")
        try:
            rc = lib.seccomp_export_bpf(ctx, fd)
            if rc < 0:
                raise SeccompError(-rc, f"seccomp_export_bpf: {os.strerror(-rc)}")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
