"""A bounds-checked byte buffer for wire codecs (aioquic/dnspython style).

`Buffer(data)` reads, `Buffer()` writes. Every read past the end, or past the
limit of a `restrict_to(n)` sub-parse, raises `MalformedPacket` with the offset;
no `IndexError` or `struct.error` ever escapes, so a codec built on it only has
to think about what the bytes mean, not whether they are there.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address
from typing import Final, final

from privsep._errors import MalformedPacket

_U16: Final = struct.Struct("!H")
_U32: Final = struct.Struct("!I")


@final
class Buffer:
    """A cursor over bytes being read, or a growing bytearray being written."""

    __slots__ = ("_data", "_end", "_pos", "_writing")

    def __init__(self, data: bytes | None = None) -> None:
        self._writing = data is None
        self._data = bytearray() if data is None else bytes(data)
        self._pos = 0
        # Reads stop at `_end`: the whole input, or the limit of a restrict_to().
        self._end = len(self._data)

    # -- position ---------------------------------------------------------------

    @property
    def data(self) -> bytes:
        """Everything written so far (writing), or the whole input (reading)."""
        return bytes(self._data)

    @property
    def remaining(self) -> int:
        """Bytes left to read before the end (or the current restrict_to limit)."""
        return self._end - self._pos

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int) -> None:
        if not 0 <= pos <= self._end:
            raise MalformedPacket("seek out of bounds", pos)
        self._pos = pos

    def eof(self) -> bool:
        return self._pos >= self._end

    @contextmanager
    def restrict_to(self, n: int) -> Iterator[None]:
        """Bound the reads inside the block to the next `n` bytes.

        Raises `MalformedPacket` if fewer than `n` bytes are left, or if the
        block does not consume exactly `n` bytes (a length field that lies).
        """
        if n < 0 or n > self.remaining:
            raise MalformedPacket(f"length {n} runs past the end", self._pos)
        saved_end = self._end
        limit = self._pos + n
        self._end = limit
        try:
            yield
        finally:
            self._end = saved_end
        if self._pos != limit:
            raise MalformedPacket(f"{limit - self._pos} unparsed bytes in a {n}-byte field", limit)

    # -- reading ----------------------------------------------------------------

    def _take(self, n: int) -> bytes:
        start = self._pos
        if n < 0 or n > self._end - start:
            raise MalformedPacket(f"need {n} bytes, {self._end - start} left", start)
        self._pos = start + n
        return bytes(self._data[start : start + n])

    def pull_bytes(self, n: int) -> bytes:
        return self._take(n)

    def pull_uint8(self) -> int:
        pos = self._pos
        if pos >= self._end:
            raise MalformedPacket("need 1 byte, 0 left", pos)
        self._pos = pos + 1
        return self._data[pos]

    def pull_uint16(self) -> int:
        value: int = _U16.unpack(self._take(2))[0]
        return value

    def pull_uint32(self) -> int:
        value: int = _U32.unpack(self._take(4))[0]
        return value

    def pull_ipv4(self) -> IPv4Address:
        return IPv4Address(self._take(4))

    # -- writing ----------------------------------------------------------------

    def _put(self, chunk: bytes) -> None:
        if not self._writing:
            raise TypeError("this Buffer was created for reading")
        assert isinstance(self._data, bytearray)
        self._data += chunk
        self._pos = self._end = len(self._data)

    def push_bytes(self, value: bytes) -> None:
        self._put(bytes(value))

    def push_uint8(self, value: int) -> None:
        if not 0 <= value <= 0xFF:
            raise ValueError(f"{value} does not fit in 8 bits")
        self._put(bytes((value,)))

    def push_uint16(self, value: int) -> None:
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"{value} does not fit in 16 bits")
        self._put(_U16.pack(value))

    def push_uint32(self, value: int) -> None:
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueError(f"{value} does not fit in 32 bits")
        self._put(_U32.pack(value))

    def push_ipv4(self, value: IPv4Address) -> None:
        self._put(value.packed)
