"""A small rtnetlink codec, sans-I/O: build requests, split and check replies.

Theory of operation. A request is one datagram: `nlmsghdr` (length, type,
flags, sequence number, port id) and a body, which for rtnetlink is a fixed
header (`ifinfomsg`, `ifaddrmsg`, `rtmsg`) followed by attributes (`rtattr`:
length, type, payload, each padded to 4 bytes). The kernel answers on the same
socket with messages carrying our sequence number:

- a change sent with NLM_F_ACK gets one NLMSG_ERROR; error 0 is the ACK,
  otherwise it is minus the errno. With NETLINK_EXT_ACK the kernel appends
  TLVs after the (with NETLINK_CAP_ACK, truncated) copy of our request, one of
  which is a human-readable message;
- a single GET gets the object (or an NLMSG_ERROR);
- a dump (NLM_F_DUMP) gets NLM_F_MULTI messages spread over as many datagrams
  as needed, then NLMSG_DONE (whose int is minus an errno if the dump failed).
  NLM_F_DUMP_INTR on a message means the table changed during the dump: the
  caller dumps again.

`Reply` is the state machine for one request: feed it each datagram; it keeps
the messages for its sequence number, ignores the others (stale answers to a
cancelled request, notifications), and raises `NetlinkFailed` for an error.
Replies are parsed strictly: a length that points outside the datagram or an
attribute of the wrong size is `MalformedReply` (a `NetlinkFailed` with errno
EPROTO), never another exception, whatever the bytes.

Integers are in the host's byte order (netlink is local); addresses in network order.
"""

from __future__ import annotations

import enum
import errno
import os
import struct
from collections.abc import Iterator
from ipaddress import IPv4Address
from typing import Final, NamedTuple, final

from privsep._errors import PrivsepError

SOL_NETLINK: Final = 270
NETLINK_CAP_ACK: Final = 10
NETLINK_EXT_ACK: Final = 11

# Message types.
NLMSG_NOOP: Final = 1
NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLMSG_OVERRUN: Final = 4
RTM_NEWLINK: Final = 16
RTM_GETLINK: Final = 18
RTM_NEWADDR: Final = 20
RTM_DELADDR: Final = 21
RTM_GETADDR: Final = 22
RTM_NEWROUTE: Final = 24
RTM_DELROUTE: Final = 25
RTM_GETROUTE: Final = 26

# Flags of nlmsghdr.
NLM_F_REQUEST: Final = 0x1
NLM_F_MULTI: Final = 0x2
NLM_F_ACK: Final = 0x4
NLM_F_DUMP_INTR: Final = 0x10
NLM_F_DUMP: Final = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE: Final = 0x100
NLM_F_EXCL: Final = 0x200
NLM_F_CREATE: Final = 0x400
NLM_F_CAPPED: Final = 0x100  # on NLMSG_ERROR: our request is not echoed whole
NLM_F_ACK_TLVS: Final = 0x200  # on NLMSG_ERROR/DONE: extended ACK attributes follow
NLMSGERR_ATTR_MSG: Final = 1

# Attributes.
IFLA_IFNAME: Final = 3
IFLA_MTU: Final = 4
IFLA_EXT_MASK: Final = 29
IFLA_MAX_MTU: Final = 51
RTEXT_FILTER_SKIP_STATS: Final = 1 << 3  # the link reply without its ~1 KiB of counters
IFA_ADDRESS: Final = 1
IFA_LOCAL: Final = 2
IFA_BROADCAST: Final = 4
IFA_CACHEINFO: Final = 6
RTA_DST: Final = 1
RTA_OIF: Final = 4
RTA_GATEWAY: Final = 5
RTA_PRIORITY: Final = 6
RTA_TABLE: Final = 15
RTN_UNICAST: Final = 1
NLA_TYPE_MASK: Final = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER

_HEADER: Final = struct.Struct("=IHHII")  # nlmsghdr
_ATTR: Final = struct.Struct("=HH")  # rtattr
_IFINFOMSG: Final = struct.Struct("=BxHiII")
_IFADDRMSG: Final = struct.Struct("=BBBBI")
_RTMSG: Final = struct.Struct("=BBBBBBBBI")
_U32: Final = struct.Struct("=I")
_I32: Final = struct.Struct("=i")
_CACHEINFO: Final = struct.Struct("=IIII")  # ifa_prefered, ifa_valid, cstamp, tstamp


class NetlinkFailed(PrivsepError):
    """The kernel refused one operation; `op` names it, `errno` is the kernel's code."""

    def __init__(self, op: str, code: int, message: str = "") -> None:
        detail = message or (errno.errorcode.get(code, str(code)) if code else "failed")
        super().__init__(f"{op}: {detail}")
        self.op = op
        self.errno = code


class MalformedReply(NetlinkFailed):
    """Bytes from the kernel that do not parse (EPROTO); `reason` says what."""

    def __init__(self, reason: str, op: str = "netlink reply") -> None:
        super().__init__(op, errno.EPROTO, f"malformed reply: {reason}")
        self.reason = reason


def _align(n: int) -> int:
    return (n + 3) & ~3


# -- building requests ---------------------------------------------------------


def message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    """One nlmsghdr plus `body`; port id 0 lets the kernel fill in ours."""
    return _HEADER.pack(_HEADER.size + len(body), kind, flags, seq, 0) + body


def attr(kind: int, payload: bytes) -> bytes:
    length = _ATTR.size + len(payload)
    return _ATTR.pack(length, kind) + payload + bytes(_align(length) - length)


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, _U32.pack(value))


def attr_ipv4(kind: int, value: IPv4Address) -> bytes:
    return attr(kind, value.packed)


def cacheinfo(valid: int, preferred: int) -> bytes:
    """The IFA_CACHEINFO payload that sets an address's lifetimes (seconds)."""
    return _CACHEINFO.pack(preferred, valid, 0, 0)


def ifinfomsg(index: int, family: int = 0) -> bytes:
    return _IFINFOMSG.pack(family, 0, index, 0, 0)


def ifaddrmsg(family: int, prefixlen: int, index: int, scope: int = 0) -> bytes:
    return _IFADDRMSG.pack(family, prefixlen, 0, scope, index)


def rtmsg(
    family: int, dst_len: int, *, table: int = 0, proto: int = 0, scope: int = 0, kind: int = 0
) -> bytes:
    return _RTMSG.pack(family, dst_len, 0, 0, table, proto, scope, kind, 0)


# -- parsing replies -------------------------------------------------------------


# The parsed records are NamedTuples, not dataclasses: each dataclass costs ~0.6 ms
# of import, and this module is on the DHCP client's start-up path.


class Message(NamedTuple):
    """One netlink message; `body` is what follows the nlmsghdr."""

    kind: int
    flags: int
    seq: int
    pid: int
    body: bytes


def split(data: bytes) -> Iterator[Message]:
    """The messages of one datagram, in order; MalformedReply on bad framing."""
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < _HEADER.size:
            raise MalformedReply(f"{end - offset} stray bytes after the last message")
        length, kind, flags, seq, pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or length > end - offset:
            raise MalformedReply(f"message length {length} at offset {offset}")
        yield Message(kind, flags, seq, pid, data[offset + _HEADER.size : offset + length])
        offset += min(_align(length), end - offset)


@final
class Attrs:
    """The attributes of one message by type (the last of a type wins, as in the
    kernel); the typed getters raise MalformedReply on a payload of the wrong size."""

    __slots__ = ("_by_type",)

    def __init__(self, data: bytes, offset: int = 0) -> None:
        by_type: dict[int, bytes] = {}
        end = len(data)
        if offset > end:
            raise MalformedReply(f"attributes start at {offset}, past the end ({end})")
        while end - offset >= _ATTR.size:
            length, kind = _ATTR.unpack_from(data, offset)
            if length < _ATTR.size or length > end - offset:
                raise MalformedReply(f"attribute length {length} at offset {offset}")
            by_type[kind & NLA_TYPE_MASK] = data[offset + _ATTR.size : offset + length]
            offset += min(_align(length), end - offset)
        if offset != end:
            raise MalformedReply(f"{end - offset} stray bytes after the attributes")
        self._by_type = by_type

    def __contains__(self, kind: int) -> bool:
        return kind in self._by_type

    def raw(self, kind: int) -> bytes | None:
        return self._by_type.get(kind)

    def _fixed(self, kind: int, size: int) -> bytes | None:
        value = self._by_type.get(kind)
        if value is not None and len(value) != size:
            raise MalformedReply(f"attribute {kind} has {len(value)} bytes, not {size}")
        return value

    def u32(self, kind: int) -> int | None:
        value = self._fixed(kind, 4)
        return None if value is None else int(_U32.unpack(value)[0])

    def ipv4(self, kind: int) -> IPv4Address | None:
        value = self._fixed(kind, 4)
        return None if value is None else IPv4Address(value)

    def text(self, kind: int) -> str | None:
        """A NUL-terminated string (decoded leniently: names are only bytes to Linux)."""
        value = self._by_type.get(kind)
        return None if value is None else value.split(b"\0", 1)[0].decode(errors="replace")

    def cacheinfo(self) -> tuple[int, int] | None:
        """IFA_CACHEINFO as (valid, preferred) seconds left."""
        value = self._fixed(IFA_CACHEINFO, _CACHEINFO.size)
        if value is None:
            return None
        preferred, valid, _, _ = _CACHEINFO.unpack(value)
        return valid, preferred


def _fixed_header(msg: Message, layout: struct.Struct, what: str) -> tuple[tuple[int, ...], Attrs]:
    if len(msg.body) < layout.size:
        raise MalformedReply(f"{what} of {len(msg.body)} bytes")
    return layout.unpack_from(msg.body), Attrs(msg.body, layout.size)


def parse_ifinfomsg(msg: Message) -> tuple[int, Attrs]:
    """(ifindex, attributes) of an RTM_NEWLINK."""
    (_, _, index, _, _), attrs = _fixed_header(msg, _IFINFOMSG, "ifinfomsg")
    return index, attrs


class AddrHeader(NamedTuple):
    family: int
    prefixlen: int
    scope: int
    ifindex: int


def parse_ifaddrmsg(msg: Message) -> tuple[AddrHeader, Attrs]:
    (family, prefixlen, _, scope, index), attrs = _fixed_header(msg, _IFADDRMSG, "ifaddrmsg")
    return AddrHeader(family, prefixlen, scope, index), attrs


class RouteHeader(NamedTuple):
    family: int
    dst_len: int
    table: int
    proto: int
    scope: int
    kind: int


def parse_rtmsg(msg: Message) -> tuple[RouteHeader, Attrs]:
    (family, dst_len, _, _, table, proto, scope, kind, _), attrs = _fixed_header(
        msg, _RTMSG, "rtmsg"
    )
    return RouteHeader(family, dst_len, table, proto, scope, kind), attrs


def _extack_text(msg: Message, offset: int) -> str:
    """The kernel's extended-ACK message, or "" (best effort: never raises)."""
    if not msg.flags & NLM_F_ACK_TLVS:
        return ""
    try:
        text = Attrs(msg.body, offset).text(NLMSGERR_ATTR_MSG)
    except MalformedReply:
        return ""
    text = (text or "").strip()[:200]
    return "".join(c if c.isprintable() else "?" for c in text)  # it ends up in logs


def parse_error(msg: Message) -> tuple[int, str]:
    """(errno, kernel message) of an NLMSG_ERROR; errno 0 is an ACK."""
    if len(msg.body) < _I32.size + _HEADER.size:
        raise MalformedReply(f"NLMSG_ERROR of {len(msg.body)} bytes")
    (error,) = _I32.unpack_from(msg.body)
    echoed = _HEADER.size
    if not msg.flags & NLM_F_CAPPED:  # the whole request is echoed: skip it
        echoed = max(_HEADER.unpack_from(msg.body, _I32.size)[0], _HEADER.size)
    return abs(error), _extack_text(msg, _I32.size + _align(echoed))


class Expect(enum.Enum):
    """How a request ends: with an ACK, with the one object asked for, with NLMSG_DONE."""

    ACK = "ack"
    ONE = "one"
    DUMP = "dump"


@final
class Reply:
    """Collects the answer to the request numbered `seq` from the datagrams fed in.

    `done` turns true when the answer is complete; `interrupted` when a dump was
    inconsistent and should be repeated. Errors are raised as NetlinkFailed(op, ...).
    """

    __slots__ = ("done", "expect", "interrupted", "messages", "op", "seq")

    def __init__(self, op: str, seq: int, expect: Expect) -> None:
        self.op = op
        self.seq = seq
        self.expect = expect
        self.messages: list[Message] = []
        self.done = False
        self.interrupted = False

    def feed(self, data: bytes) -> None:
        try:
            self._feed(data)
        except MalformedReply as exc:
            raise MalformedReply(exc.reason, self.op) from None

    def _feed(self, data: bytes) -> None:
        for msg in split(data):
            if self.done or msg.seq != self.seq or msg.kind == NLMSG_NOOP:
                continue  # not ours: a stale answer or a notification
            if msg.kind == NLMSG_ERROR:
                code, text = parse_error(msg)
                if code:
                    raise NetlinkFailed(self.op, code, _describe(code, text))
                self.done = True  # the ACK (for a GET or a dump: early end, nothing)
            elif msg.kind == NLMSG_DONE:
                self._done(msg)
            elif msg.kind == NLMSG_OVERRUN:
                raise NetlinkFailed(self.op, errno.ENOBUFS, "overrun")
            else:
                if msg.flags & NLM_F_DUMP_INTR:
                    self.interrupted = True
                self.messages.append(msg)
                if self.expect is Expect.ONE:
                    self.done = True

    def _done(self, msg: Message) -> None:
        if len(msg.body) >= _I32.size:
            (error,) = _I32.unpack_from(msg.body)
            if error:
                code = abs(error)
                raise NetlinkFailed(self.op, code, _describe(code, _extack_text(msg, 4)))
        self.done = True


def _describe(code: int, text: str) -> str:
    try:
        reason = os.strerror(code)
    except (ValueError, OverflowError):  # an out-of-range code from a confused kernel
        reason = f"error {code}"
    return f"{reason} ({text})" if text else reason
