"""The few libc calls the exec helper makes, through `_ctypes` directly.

`import ctypes` costs ~2 ms (its Python layer builds dozens of types); every
sandboxed start pays for what the exec helper imports, so the helper binds the
handful of functions it needs on the C module: every argument is a C long,
bytes (a read-only pointer) or None (NULL), and every result a C long.
"""

from __future__ import annotations

import _ctypes
import os


class _Long(_ctypes._SimpleCData):  # type: ignore[type-arg]  # generic only in stubs
    _type_ = "l"


class _Char(_ctypes._SimpleCData):  # type: ignore[type-arg]  # generic only in stubs
    _type_ = "c"


class _Function(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _Long


class _Process:
    """What `CFuncPtr((name, library))` needs of a library: its dlopen handle."""

    _handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]  # the process itself


_PROCESS = _Process()
_FUNCTIONS: dict[str, _Function] = {}

Arg = int | bytes | None


def call(name: str, *args: Arg) -> int:
    """`name(*args)` from libc; -1 with errno set on failure, as libc returns."""
    function = _FUNCTIONS.get(name)
    if function is None:
        function = _FUNCTIONS[name] = _Function((name, _PROCESS))  # type: ignore[arg-type]
    result: int = function(*(_Long(a) if isinstance(a, int) else a for a in args))
    return result


def errno() -> int:
    return _ctypes.get_errno()


def check(result: int, what: str) -> int:
    """`result`, or OSError(errno) naming `what` when libc returned -1."""
    if result == -1:
        err = errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


class Buffer:
    """Writable memory holding `data`, with a stable address (kept alive by this object)."""

    def __init__(self, data: bytes) -> None:
        array = type("_Array", (_ctypes.Array,), {"_type_": _Char, "_length_": max(1, len(data))})
        self._array = array.from_buffer_copy(data.ljust(1, b"\0"))  # type: ignore[attr-defined]
        self.address: int = _ctypes.addressof(self._array)
