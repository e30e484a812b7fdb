"""The BOOTP/DHCPv4 message (RFC 2131, 2132, 3396) and its wire codec.

Theory of operation. A message is a fixed 236-byte BOOTP header, the magic
cookie 99.130.83.99, then an options area. `decode_message` reads options from
the options area, then (when option 52 says so) from `file`, then from `sname`,
the order RFC 2131 4.1 gives. Options that appear more than once are joined into
one payload in order (RFC 3396), so `Message.options` holds each code at most
once, in order of first appearance; PAD, END and the framing option 52 are not
kept.

Decisions (docs/dhcp-codec.md has the reasons):
- A missing END is tolerated when the area ends on an option boundary (the end
  of the area is as good as END); an option cut short by the end is malformed.
  Bytes after END are padding and are ignored.
- Option 52 must appear at most once, in the options area only; inside `file`
  or `sname` it is malformed (the classic overload-loop input).
- Every option whose code is in the table is decoded, and one bad known option
  rejects the whole message: a lease is never built from half-valid data.
- Anything wrong raises `MalformedPacket` (or its subclass `MalformedOption`);
  nothing else escapes, whatever the input.

`encode_message` never overloads; it splits payloads longer than 255 bytes into
consecutive options (RFC 3396), ends with END and pads to the 300-byte BOOTP
minimum. `decode_message(encode_message(m)) == m` for every valid `m`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Final

from privsep._errors import MalformedPacket
from privsep.services.dhcp._options import (
    MalformedOption,
    MessageType,
    OptionValue,
    check_option,
    decode_option,
)

BOOTREQUEST: Final = 1
BOOTREPLY: Final = 2
FLAG_BROADCAST: Final = 0x8000
SERVER_PORT: Final = 67
CLIENT_PORT: Final = 68
MAGIC_COOKIE: Final = b"\x63\x82\x53\x63"
MIN_MESSAGE_SIZE: Final = 300  # BOOTP (RFC 951) minimum; some relays drop shorter ones

_HEADER: Final = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
_OPTIONS_START: Final = _HEADER.size + len(MAGIC_COOKIE)  # 240
_SNAME_OFFSET: Final = 44
_FILE_OFFSET: Final = 108
_PAD: Final = 0
_END: Final = 255
_OVERLOAD: Final = 52
_UNSPECIFIED: Final = IPv4Address(0)


@dataclass(frozen=True, slots=True)
class Message:
    """One DHCP message. `options` holds raw `(code, payload)` pairs, each code once."""

    op: int
    xid: int
    chaddr: bytes
    ciaddr: IPv4Address = _UNSPECIFIED
    yiaddr: IPv4Address = _UNSPECIFIED
    siaddr: IPv4Address = _UNSPECIFIED
    giaddr: IPv4Address = _UNSPECIFIED
    secs: int = 0
    flags: int = 0
    htype: int = 1
    hops: int = 0
    sname: bytes = b""
    file: bytes = b""
    options: tuple[tuple[int, bytes], ...] = field(default=())

    def __post_init__(self) -> None:
        # Caller misuse raises ValueError; bad network bytes never get this far.
        # Straight-line checks: every decoded message passes through here.
        if self.op not in (BOOTREQUEST, BOOTREPLY):
            raise ValueError(f"op {self.op} is not 1 (request) or 2 (reply)")
        _check_int("xid", self.xid, 0xFFFFFFFF)
        _check_int("secs", self.secs, 0xFFFF)
        _check_int("flags", self.flags, 0xFFFF)
        _check_int("htype", self.htype, 0xFF)
        _check_int("hops", self.hops, 0xFF)
        if not (
            type(self.ciaddr) is IPv4Address
            and type(self.yiaddr) is IPv4Address
            and type(self.siaddr) is IPv4Address
            and type(self.giaddr) is IPv4Address
        ):
            raise ValueError("ciaddr, yiaddr, siaddr and giaddr must be IPv4Address")
        _check_blob("chaddr", self.chaddr, 16)
        _check_blob("sname", self.sname, 64)
        _check_blob("file", self.file, 128)
        seen: set[int] = set()
        for pair in self.options:
            if not (
                type(pair) is tuple
                and len(pair) == 2
                and isinstance(pair[0], int)
                and type(pair[1]) is bytes
            ):
                raise ValueError(f"options must be (int, bytes) pairs, not {pair!r}")
            code = pair[0]
            if not 1 <= code <= 254 or code == _OVERLOAD:
                raise ValueError(f"option code {code} cannot be carried (1..254, not 52)")
            if code in seen:
                raise ValueError(f"option {code} appears twice; join the payloads (RFC 3396)")
            seen.add(code)

    def option(self, code: int) -> bytes | None:
        """The raw payload of option `code`, or None."""
        for have, payload in self.options:
            if have == code:
                return payload
        return None

    def get(self, code: int) -> OptionValue | None:
        """Option `code` decoded by its kind (see `decode_option`), or None."""
        payload = self.option(code)
        return None if payload is None else decode_option(code, payload)

    @property
    def message_type(self) -> MessageType | None:
        value = self.get(53)
        return value if isinstance(value, MessageType) else None


def _check_int(name: str, value: object, top: int) -> None:
    if type(value) is not int or not 0 <= value <= top:
        raise ValueError(f"{name} {value!r} is not 0..{top}")


def _check_blob(name: str, value: object, limit: int) -> None:
    if type(value) is not bytes or len(value) > limit:
        raise ValueError(f"{name} must be bytes of at most {limit}")
    if name != "chaddr" and value.endswith(b"\x00"):
        raise ValueError(f"{name} is stored without trailing NULs")


def _scan(
    data: bytes,
    start: int,
    end: int,
    order: list[int],
    chunks: dict[int, list[bytes]],
    *,
    main_area: bool,
) -> None:
    """Collect the options of one area, `data[start:end]`, into `order`/`chunks`."""
    pos = start
    while pos < end:
        code = data[pos]
        if code == _PAD:
            pos += 1
            continue
        if code == _END:
            return
        if pos + 1 >= end:
            raise MalformedPacket(f"option {code} has no length byte", pos)
        payload_end = pos + 2 + data[pos + 1]
        if payload_end > end:
            raise MalformedPacket(f"option {code} runs past the end of its area", pos)
        if code == _OVERLOAD and (not main_area or _OVERLOAD in chunks):
            where = "repeated" if main_area else "inside file/sname"
            raise MalformedPacket(f"option overload (52) {where}", pos)
        bucket = chunks.get(code)
        if bucket is None:
            order.append(code)
            chunks[code] = [data[pos + 2 : payload_end]]
        else:
            bucket.append(data[pos + 2 : payload_end])
        pos = payload_end


def _address(packed: bytes) -> IPv4Address:
    # Most header addresses are 0.0.0.0; the int constructor is the cheap one.
    value = int.from_bytes(packed, "big")
    return IPv4Address(value) if value else _UNSPECIFIED


def decode_message(data: bytes) -> Message:
    """Parse one BOOTP/DHCP message (a UDP payload). Raises `MalformedPacket`."""
    data = bytes(data)
    if len(data) < _OPTIONS_START:
        raise MalformedPacket(f"message of {len(data)} bytes, the minimum is 240", len(data))
    (op, htype, hlen, hops, xid, secs, flags, ci, yi, si, gi, chaddr, sname, file) = (
        _HEADER.unpack_from(data)
    )
    if op not in (BOOTREQUEST, BOOTREPLY):
        raise MalformedPacket(f"op {op}", 0)
    if hlen > 16:
        raise MalformedPacket(f"hlen {hlen} is more than 16", 2)
    if data[_HEADER.size : _OPTIONS_START] != MAGIC_COOKIE:
        raise MalformedPacket("no DHCP magic cookie", _HEADER.size)

    order: list[int] = []
    chunks: dict[int, list[bytes]] = {}
    _scan(data, _OPTIONS_START, len(data), order, chunks, main_area=True)
    overload = 0
    if _OVERLOAD in chunks:
        value = decode_option(_OVERLOAD, chunks[_OVERLOAD][0])
        assert isinstance(value, int)
        overload = value
        if overload & 1:
            _scan(data, _FILE_OFFSET, _FILE_OFFSET + 128, order, chunks, main_area=False)
            file = b""
        if overload & 2:
            _scan(data, _SNAME_OFFSET, _SNAME_OFFSET + 64, order, chunks, main_area=False)
            sname = b""

    options: list[tuple[int, bytes]] = []
    for code in order:
        if code == _OVERLOAD:
            continue
        parts = chunks[code]
        payload = parts[0] if len(parts) == 1 else b"".join(parts)
        check_option(code, payload)  # raises MalformedOption
        options.append((code, payload))

    return Message(
        op=op,
        xid=xid,
        chaddr=chaddr[:hlen],
        ciaddr=_address(ci),
        yiaddr=_address(yi),
        siaddr=_address(si),
        giaddr=_address(gi),
        secs=secs,
        flags=flags,
        htype=htype,
        hops=hops,
        sname=sname.rstrip(b"\x00"),
        file=file.rstrip(b"\x00"),
        options=tuple(options),
    )


def encode_message(message: Message, *, max_size: int = 576) -> bytes:
    """Serialize `message` as a UDP payload of at most `max_size` bytes.

    Raises `ValueError` if a known option holds a payload its kind rejects, or
    if the result does not fit in `max_size`.
    """
    m = message
    out = bytearray(
        _HEADER.pack(
            m.op,
            m.htype,
            len(m.chaddr),
            m.hops,
            m.xid,
            m.secs,
            m.flags,
            m.ciaddr.packed,
            m.yiaddr.packed,
            m.siaddr.packed,
            m.giaddr.packed,
            m.chaddr,
            m.sname,
            m.file,
        )
    )
    out += MAGIC_COOKIE
    for code, payload in m.options:
        try:
            check_option(code, payload)
        except MalformedOption as exc:
            raise ValueError(f"cannot encode: {exc}") from None
        size = len(payload)
        if size <= 255:
            out += bytes((code, size))
            out += payload
            continue
        for i in range(0, size, 255):
            chunk = payload[i : i + 255]
            out += bytes((code, len(chunk)))
            out += chunk
    out.append(_END)
    if len(out) < MIN_MESSAGE_SIZE:
        out += bytes(MIN_MESSAGE_SIZE - len(out))
    if len(out) > max_size:
        raise ValueError(f"message of {len(out)} bytes does not fit in {max_size}")
    return bytes(out)
