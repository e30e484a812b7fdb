"""Landlock: the ABI probe and the mapping from layout rights to access bits.

The spawner (this module) decides what the ruleset handles for the ABI the
kernel offers and what each rule allows; the exec helper (`_lock.py`) only
makes the three syscalls. Rights a layout may grant (coarse on purpose):

    read     READ_FILE | READ_DIR
    write    WRITE_FILE | TRUNCATE (ABI 3)
    execute  EXECUTE
    create   MAKE_REG | MAKE_DIR | MAKE_SYM | MAKE_SOCK | MAKE_FIFO | REFER (ABI 2)
    remove   REMOVE_FILE | REMOVE_DIR

Everything the ABI can handle is handled, so whatever is not granted is
denied (MAKE_CHAR, MAKE_BLOCK, IOCTL_DEV outside /dev, ...). From ABI 4 TCP
bind and connect are handled too (denied: the supervisor opens sockets), and
from ABI 6 abstract unix sockets and signals are scoped to the sandbox.
"""

from __future__ import annotations

import ctypes
import functools

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13
TRUNCATE = 1 << 14
IOCTL_DEV = 1 << 15

NET_BIND_TCP = 1 << 0
NET_CONNECT_TCP = 1 << 1

SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1

# Rights that apply to a file (a rule on a non-directory may hold only these).
FILE_ACCESS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV

_RIGHTS = {
    "read": READ_FILE | READ_DIR,
    "write": WRITE_FILE | TRUNCATE,
    "execute": EXECUTE,
    "create": MAKE_REG | MAKE_DIR | MAKE_SYM | MAKE_SOCK | MAKE_FIFO | REFER,
    "remove": REMOVE_FILE | REMOVE_DIR,
}

_LANDLOCK_CREATE_RULESET_VERSION = 1
_SYS_LANDLOCK_CREATE_RULESET = 444  # the same on every architecture (new syscall table)


@functools.cache
def abi() -> int:
    """The Landlock ABI version of the running kernel; 0 when unavailable."""
    libc = ctypes.CDLL(None, use_errno=True)
    version: int = libc.syscall(
        ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET),
        None,
        ctypes.c_size_t(0),
        ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION),
    )
    return max(version, 0)


def handled_fs(version: int) -> int:
    if version < 1:
        return 0
    bits = (MAKE_SYM << 1) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if version >= 2:
        bits |= REFER
    if version >= 3:
        bits |= TRUNCATE
    if version >= 5:
        bits |= IOCTL_DEV
    return bits


def handled_net(version: int, allowed_syscalls: frozenset[str]) -> int:
    """TCP bind/connect are handled (denied) unless the layout allows those syscalls."""
    if version < 4:
        return 0
    bits = 0
    if "bind" not in allowed_syscalls:
        bits |= NET_BIND_TCP
    if "connect" not in allowed_syscalls:
        bits |= NET_CONNECT_TCP
    return bits


def scoped(version: int) -> int:
    return SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if version >= 6 else 0


def access_mask(rights: tuple[str, ...] | list[str]) -> int:
    """The access bits for layout `rights` (unknown names raise KeyError)."""
    bits = 0
    for right in rights:
        bits |= _RIGHTS[right]
    return bits
