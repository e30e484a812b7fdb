"""The DHCP codec against one table of cases shared by the encoder and the decoder.

Canonical cases go both ways (bytes -> value and value -> the same bytes);
decode-only cases are inputs a peer may send that we never produce (RFC 3396
splits, overload, missing END, ...). Every decoder case is also replayed cut at
every offset and with trailing junk.
"""

from __future__ import annotations

import contextlib
import re
import struct
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from privsep._errors import MalformedPacket
from privsep.services.dhcp._buffer import Buffer
from privsep.services.dhcp._message import (
    MAGIC_COOKIE,
    Message,
    decode_message,
    encode_message,
)
from privsep.services.dhcp._options import (
    OPTIONS,
    ClasslessRoute,
    MalformedOption,
    MessageType,
    OptionCode,
    OptionKind,
    check_option,
    decode_option,
    encode_option,
    option_name,
)

A = IPv4Address
N = IPv4Network
MAC = bytes.fromhex("027700000010")
XID = 0x11223344


# -- option payloads ---------------------------------------------------------------

# (code, payload, value): decode_option(code, payload) == value and
# encode_option(code, value) == payload. At least one row per kind.
OPTION_CASES: list[tuple[int, bytes, Any]] = [
    (1, bytes([255, 255, 255, 0]), A("255.255.255.0")),
    (2, (-3600).to_bytes(4, "big", signed=True), -3600),
    (2, (7200).to_bytes(4, "big"), 7200),
    (3, bytes([10, 0, 0, 1]), (A("10.0.0.1"),)),
    (6, bytes([10, 0, 0, 1, 10, 0, 0, 2]), (A("10.0.0.1"), A("10.0.0.2"))),
    (33, bytes([10, 9, 0, 0, 10, 0, 0, 1]), (A("10.9.0.0"), A("10.0.0.1"))),
    (23, b"\x40", 64),
    (26, b"\x05\x78", 1400),
    (51, b"\x00\x00\x00\x78", 120),
    (51, b"\xff\xff\xff\xff", 0xFFFFFFFF),
    (108, b"\x00\x00\x07\x08", 1800),
    (19, b"\x01", True),
    (19, b"\x00", False),
    (80, b"", True),
    (15, b"example.test", "example.test"),
    (12, "h\u00e9te".encode(), "h\u00e9te"),
    (56, b"", ""),
    (12, b"$(reboot); `id` 'q' \"d\"\n() { :; };", "$(reboot); `id` 'q' \"d\"\n() { :; };"),
    (
        119,
        b"\x07example\x04test\x00\x03lab\x07example\x04test\x00",
        ("example.test", "lab.example.test"),
    ),
    (119, b"\x00", ("",)),
    (119, b"", ()),
    (
        121,
        bytes([16, 10, 10, 192, 168, 77, 1]),
        (ClasslessRoute(N("10.10.0.0/16"), A("192.168.77.1")),),
    ),
    (
        121,
        bytes([0, 192, 168, 77, 1, 32, 10, 1, 2, 3, 0, 0, 0, 0, 9, 10, 128, 10, 0, 0, 1]),
        (
            ClasslessRoute(N("0.0.0.0/0"), A("192.168.77.1")),
            ClasslessRoute(N("10.1.2.3/32"), A("0.0.0.0")),
            ClasslessRoute(N("10.128.0.0/9"), A("10.0.0.1")),
        ),
    ),
    (
        249,
        bytes([24, 172, 16, 5, 10, 0, 0, 1]),
        (ClasslessRoute(N("172.16.5.0/24"), A("10.0.0.1")),),
    ),
    (53, b"\x05", MessageType.ACK),
    (53, b"\x09", MessageType.FORCERENEW),
    (52, b"\x03", 3),
    (55, b"\x01\x03\x06\x0f\x1a\x77\x79", (1, 3, 6, 15, 26, 119, 121)),
    (145, b"\x01", (1,)),
    (61, b"\x01" + MAC, b"\x01" + MAC),
    (43, b"\x01\x02\xab\xcd", b"\x01\x02\xab\xcd"),
    (60, b"\x00\xff", b"\x00\xff"),
    (77, b"", b""),
    (224, b"private", b"private"),
    (254, b"\x00", b"\x00"),
]

# (code, payload, value, canonical payload): accepted, but we would encode it otherwise.
OPTION_DECODE_ONLY: list[tuple[int, bytes, Any, bytes]] = [
    (12, b"host\x00\x00", "host", b"host"),
    (56, b"\x00", "", b""),
    (
        119,  # dnsmasq's compressed search list, captured
        b"\x07example\x04test\x00\x03lab\xc0\x00\x07example\x03org\x00",
        ("example.test", "lab.example.test", "example.org"),
        b"\x07example\x04test\x00\x03lab\x07example\x04test\x00\x07example\x03org\x00",
    ),
    (
        119,  # pointer to a pointer, both backwards
        b"\x01a\x00\x01b\xc0\x00\x01c\xc0\x03",
        ("a", "b.a", "c.b.a"),
        b"\x01a\x00\x01b\x01a\x00\x01c\x01b\x01a\x00",
    ),
    (
        121,  # host bits beyond the prefix are masked
        bytes([9, 10, 255, 10, 0, 0, 1]),
        (ClasslessRoute(N("10.128.0.0/9"), A("10.0.0.1")),),
        bytes([9, 10, 128, 10, 0, 0, 1]),
    ),
]


# (code, payload, reason): decode_option raises MalformedOption. Every kind that can fail.
OPTION_REJECTS: list[tuple[int, bytes, str]] = [
    (1, b"\x01\x02\x03", "an address needs 4"),
    (3, b"", "not a positive multiple of 4"),
    (6, bytes(5), "not a positive multiple of 4"),
    (33, bytes(4), "not a positive multiple of 8"),
    (23, b"", "expected 1"),
    (26, b"\x05", "expected 2"),
    (51, bytes(3), "expected 4"),
    (2, bytes(5), "expected 4"),
    (19, b"\x02", "boolean value 2"),
    (80, b"\x00", "a flag option is empty"),
    (12, b"a\x00b", "NUL inside"),
    (15, b"\xc3", "not UTF-8"),
    (119, b"\x01", "label runs past"),
    (121, bytes([33]) + bytes(8), "prefix length 33"),
    (53, b"\x00", "unknown message type 0"),
    (53, b"", "expected 1"),
    (52, b"\x04", "overload value 4"),
    (55, b"", "empty list"),
    (61, b"\x01", "needs 2 or more"),
]


def test_the_option_tables_cover_every_kind() -> None:
    kinds = {OPTIONS[code][1] for code, _, _ in OPTION_CASES if code in OPTIONS}
    assert kinds == set(OptionKind)
    assert any(code not in OPTIONS for code, _, _ in OPTION_CASES)
    failing = {OPTIONS[code][1] for code, _, _ in OPTION_REJECTS}
    assert failing == set(OptionKind) - {OptionKind.RAW}  # RAW accepts anything


CHECK_EDGES: list[tuple[int, bytes]] = [
    (119, b"\x01a"),  # name runs past the end
    (119, b"\x01a\x00\xc0"),  # truncated pointer
    (119, b"\x01a\x00\xc0\x00"),  # pointer to an earlier name: valid
    (119, b"\x01a\x00\x01b\xc0\x01"),  # pointer into a label: the decoder decides
    (119, b"\x01a\x00\x00\xc0\x02"),  # pointer to a root name: the decoder decides
    (119, b"\x41" + b"a" * 65 + b"\x00"),  # reserved label type
    (121, bytes([8, 10, 1, 2, 3])),  # one byte short
    (12, "h\u00e9".encode()),  # UTF-8 beyond ASCII: the decoder decides
]


@pytest.mark.parametrize(
    ("code", "payload"),
    [row[:2] for row in OPTION_CASES]
    + [row[:2] for row in OPTION_DECODE_ONLY]
    + [row[:2] for row in OPTION_REJECTS]
    + CHECK_EDGES,
)
def test_check_option_gives_the_decoder_verdict(code: int, payload: bytes) -> None:
    try:
        decode_option(code, payload)
    except MalformedOption as exc:
        with pytest.raises(MalformedOption, match=re.escape(str(exc))):
            check_option(code, payload)
    else:
        check_option(code, payload)


@pytest.mark.parametrize(("code", "payload", "reason"), OPTION_REJECTS)
def test_decode_option_rejects(code: int, payload: bytes, reason: str) -> None:
    with pytest.raises(MalformedOption, match=reason) as info:
        decode_option(code, payload)
    assert info.value.code == code
    assert isinstance(info.value, MalformedPacket)


@pytest.mark.parametrize(("code", "payload", "value"), OPTION_CASES)
def test_decode_option(code: int, payload: bytes, value: Any) -> None:
    decoded = decode_option(code, payload)
    assert decoded == value
    assert type(decoded) is type(value)


@pytest.mark.parametrize(("code", "payload", "value"), OPTION_CASES)
def test_encode_option(code: int, payload: bytes, value: Any) -> None:
    assert encode_option(code, value) == payload


@pytest.mark.parametrize(("code", "payload", "value", "canonical"), OPTION_DECODE_ONLY)
def test_decode_option_accepts_non_canonical(
    code: int, payload: bytes, value: Any, canonical: bytes
) -> None:
    assert decode_option(code, payload) == value
    assert encode_option(code, value) == canonical


@pytest.mark.parametrize(
    ("code", "payload", "value"),
    [row for row in OPTION_CASES if row[1]] + [row[:3] for row in OPTION_DECODE_ONLY],
)
def test_truncated_option_payload_is_rejected_or_valid(
    code: int, payload: bytes, value: Any
) -> None:
    for cut in range(len(payload)):
        try:
            shorter = decode_option(code, payload[:cut])
        except MalformedOption as exc:
            assert exc.code == code
        else:  # a shorter list/string is itself valid: it must re-encode to a decodable form
            assert decode_option(code, encode_option(code, shorter)) == shorter


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (1, "10.0.0.1"),
        (3, ()),
        (3, ("10.0.0.1",)),
        (33, (A("10.0.0.1"),)),
        (26, 70000),
        (26, -1),
        (26, "1400"),
        (2, 2**31),
        (19, 2),
        (19, "yes"),
        (80, False),
        (15, b"bytes"),
        (15, "nul\x00inside"),
        (119, "example.test"),
        (119, ("a..b",)),
        (119, ("trailing.",)),
        (119, ("x" * 64,)),
        (119, ("sp ace",)),
        (119, ("\u00e9",)),
        (119, (".".join(["a" * 63] * 4),)),
        (119, (1,)),
        (121, ()),
        (121, (N("10.0.0.0/8"),)),
        (53, 0),
        (53, 99),
        (53, "ACK"),
        (52, 4),
        (52, "1"),
        (55, ()),
        (55, (256,)),
        (55, "1,3"),
        (61, b"\x01"),
        (61, "id"),
        (43, "text"),
        (0, b""),
        (255, b""),
    ],
)
def test_encode_option_rejects_values_that_do_not_fit(code: int, value: Any) -> None:
    with pytest.raises(ValueError, match=r"option|code"):
        encode_option(code, value)


def test_domain_name_of_255_bytes_is_the_limit() -> None:
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 254 bytes + root = 255
    payload = encode_option(119, (longest,))
    assert len(payload) == 255
    assert decode_option(119, payload) == (longest,)
    with pytest.raises(MalformedOption, match="255"):
        decode_option(119, payload[:-63] + b"\x3f" + b"e" * 63 + b"\x00")


def test_option_names_and_codes() -> None:
    assert option_name(1) == "subnet-mask"
    assert option_name(224) == "option-224"
    assert OptionCode.CLASSLESS_STATIC_ROUTES == 121
    assert all(1 <= code <= 254 for code in OPTIONS)
    assert set(OPTIONS) <= {int(c) for c in OptionCode}


# -- whole messages ----------------------------------------------------------------


def header(
    *,
    op: int = 2,
    htype: int = 1,
    hlen: int = 6,
    hops: int = 0,
    xid: int = XID,
    secs: int = 0,
    flags: int = 0,
    ciaddr: str = "0.0.0.0",
    yiaddr: str = "0.0.0.0",
    siaddr: str = "0.0.0.0",
    giaddr: str = "0.0.0.0",
    chaddr: bytes = MAC,
    sname: bytes = b"",
    file: bytes = b"",
    cookie: bytes = MAGIC_COOKIE,
) -> bytes:
    """A BOOTP header built by hand, independently of the encoder."""
    return (
        struct.pack("!BBBBIHH", op, htype, hlen, hops, xid, secs, flags)
        + b"".join(A(a).packed for a in (ciaddr, yiaddr, siaddr, giaddr))
        + chaddr.ljust(16, b"\x00")
        + sname.ljust(64, b"\x00")
        + file.ljust(128, b"\x00")
        + cookie
    )


def wire(options: bytes, *, pad_to: int = 300, **fields: Any) -> bytes:
    return (header(**fields) + options).ljust(pad_to, b"\x00")


def opt(code: int, payload: bytes) -> bytes:
    return bytes((code, len(payload))) + payload


ACK_OPTIONS: tuple[tuple[int, bytes], ...] = (
    (53, b"\x05"),
    (54, A("192.168.77.1").packed),
    (51, (120).to_bytes(4, "big")),
    (58, (60).to_bytes(4, "big")),
    (59, (105).to_bytes(4, "big")),
    (1, A("255.255.255.0").packed),
    (3, A("192.168.77.1").packed),
    (6, A("192.168.77.1").packed + A("192.168.77.2").packed),
    (15, b"example.test"),
    (26, (1400).to_bytes(2, "big")),
    (119, b"\x07example\x04test\x00"),
    (121, bytes([16, 10, 10, 192, 168, 77, 1])),
    (224, b"\x00opaque\xff"),
)

LONG = bytes(range(256)) + bytes(44)  # 300 bytes: must travel as 255 + 45

# (wire, message): decode_message(wire) == message and encode_message(message) == wire.
MESSAGE_CASES = [
    pytest.param(
        wire(opt(53, b"\x01") + b"\xff", op=1),
        Message(op=1, xid=XID, chaddr=MAC, options=((53, b"\x01"),)),
        id="discover-minimal",
    ),
    pytest.param(
        wire(b"".join(opt(c, p) for c, p in ACK_OPTIONS) + b"\xff", yiaddr="192.168.77.148"),
        Message(op=2, xid=XID, chaddr=MAC, yiaddr=A("192.168.77.148"), options=ACK_OPTIONS),
        id="ack-typical",
    ),
    pytest.param(
        header(op=1) + b"\x4d\xff" + LONG[:255] + b"\x4d\x2d" + LONG[255:] + b"\xff",
        Message(op=1, xid=XID, chaddr=MAC, options=((77, LONG),)),
        id="option-longer-than-255-is-split",
    ),
    pytest.param(
        wire(b"\x4d\x00\xff", op=1),
        Message(op=1, xid=XID, chaddr=MAC, options=((77, b""),)),
        id="empty-option",
    ),
    pytest.param(
        wire(b"\xff"),
        Message(op=2, xid=XID, chaddr=MAC),
        id="no-options",
    ),
    pytest.param(
        wire(
            opt(53, b"\x08") + b"\xff",
            op=1,
            htype=6,
            hlen=16,
            hops=3,
            xid=0xFFFFFFFF,
            secs=65535,
            flags=0x8000,
            ciaddr="10.1.1.1",
            yiaddr="10.1.1.2",
            siaddr="10.1.1.3",
            giaddr="10.1.1.4",
            chaddr=bytes(range(1, 17)),
            sname=b"boot-server",
            file=b"/pxelinux.0",
        ),
        Message(
            op=1,
            xid=0xFFFFFFFF,
            chaddr=bytes(range(1, 17)),
            ciaddr=A("10.1.1.1"),
            yiaddr=A("10.1.1.2"),
            siaddr=A("10.1.1.3"),
            giaddr=A("10.1.1.4"),
            secs=65535,
            flags=0x8000,
            htype=6,
            hops=3,
            sname=b"boot-server",
            file=b"/pxelinux.0",
            options=((53, b"\x08"),),
        ),
        id="every-header-field",
    ),
    pytest.param(
        wire(b"\xff", hlen=0, chaddr=b""),
        Message(op=2, xid=XID, chaddr=b""),
        id="hlen-zero",
    ),
    pytest.param(
        wire(b"\xff", sname=b"a\x00b", file=b"x" * 128),
        Message(op=2, xid=XID, chaddr=MAC, sname=b"a\x00b", file=b"x" * 128),
        id="inner-nul-kept-and-full-file",
    ),
]

ROUTER_A = A("10.0.0.1").packed
ROUTER_B = A("10.0.0.2").packed

# (wire, message): accepted input that the encoder would write differently.
DECODE_ONLY_CASES = [
    pytest.param(
        wire(opt(3, ROUTER_A) + opt(3, ROUTER_B) + b"\xff"),
        Message(op=2, xid=XID, chaddr=MAC, options=((3, ROUTER_A + ROUTER_B),)),
        id="rfc3396-concatenation",
    ),
    pytest.param(
        wire(opt(6, ROUTER_A) + opt(1, bytes(4)) + opt(6, ROUTER_B) + b"\xff"),
        Message(op=2, xid=XID, chaddr=MAC, options=((6, ROUTER_A + ROUTER_B), (1, bytes(4)))),
        id="rfc3396-concatenation-keeps-first-position",
    ),
    pytest.param(
        wire(opt(52, b"\x01") + opt(53, b"\x05") + b"\xff", file=opt(15, b"in.file") + b"\xff"),
        Message(op=2, xid=XID, chaddr=MAC, options=((53, b"\x05"), (15, b"in.file"))),
        id="overload-file",
    ),
    pytest.param(
        wire(opt(52, b"\x02") + b"\xff", sname=opt(12, b"in-sname") + b"\xff", file=b"boot"),
        Message(op=2, xid=XID, chaddr=MAC, file=b"boot", options=((12, b"in-sname"),)),
        id="overload-sname",
    ),
    pytest.param(
        wire(
            opt(3, ROUTER_A) + opt(52, b"\x03") + b"\xff",
            file=opt(3, ROUTER_B) + opt(15, b"f") + b"\xff",
            sname=opt(3, A("10.0.0.3").packed) + opt(12, b"s"),  # no END: field end is enough
        ),
        Message(
            op=2,
            xid=XID,
            chaddr=MAC,
            options=(
                (3, ROUTER_A + ROUTER_B + A("10.0.0.3").packed),
                (15, b"f"),
                (12, b"s"),
            ),
        ),
        id="overload-both-in-rfc2131-order",
    ),
    pytest.param(
        header() + opt(53, b"\x06") + opt(54, ROUTER_A),
        Message(op=2, xid=XID, chaddr=MAC, options=((53, b"\x06"), (54, ROUTER_A))),
        id="missing-end-and-no-padding",
    ),
    pytest.param(
        wire(b"\x00\x00" + opt(53, b"\x05") + b"\x00" + opt(1, bytes(4)) + b"\xff"),
        Message(op=2, xid=XID, chaddr=MAC, options=((53, b"\x05"), (1, bytes(4)))),
        id="pad-between-options",
    ),
    pytest.param(
        wire(opt(53, b"\x05") + b"\xff" + b"\x01\x09garbage" + opt(52, b"\x03")),
        Message(op=2, xid=XID, chaddr=MAC, options=((53, b"\x05"),)),
        id="bytes-after-end-ignored",
    ),
    pytest.param(
        wire(b"\xff", chaddr=MAC + b"\xde\xad\xbe\xef"),
        Message(op=2, xid=XID, chaddr=MAC),
        id="chaddr-beyond-hlen-ignored",
    ),
    pytest.param(
        header() + b"\xff",
        Message(op=2, xid=XID, chaddr=MAC),
        id="shorter-than-300",
    ),
]

DECODER_CASES = MESSAGE_CASES + DECODE_ONLY_CASES


@pytest.mark.parametrize(("data", "message"), DECODER_CASES)
def test_decode_message(data: bytes, message: Message) -> None:
    assert decode_message(data) == message


@pytest.mark.parametrize(("data", "message"), MESSAGE_CASES)
def test_encode_message(data: bytes, message: Message) -> None:
    assert encode_message(message) == data


@pytest.mark.parametrize(("data", "message"), DECODE_ONLY_CASES)
def test_decode_only_cases_re_encode_to_the_same_message(data: bytes, message: Message) -> None:
    assert decode_message(encode_message(message)) == message


@pytest.mark.parametrize(("data", "message"), DECODER_CASES)
def test_every_truncation_is_rejected_or_a_valid_prefix(data: bytes, message: Message) -> None:
    full = dict(message.options)
    for cut in range(len(data)):
        try:
            shorter = decode_message(data[:cut])
        except MalformedPacket:
            continue
        assert cut >= 240, "a message without the whole header was accepted"
        # Only a cut on an option boundary decodes, giving what was read so far.
        for code, payload in shorter.options:
            assert full[code].startswith(payload)


@pytest.mark.parametrize(("data", "message"), DECODER_CASES)
@pytest.mark.parametrize(
    "junk", [b"\x00", b"\xff", b"\x00" * 100, b"\x35\x01\x05", b"\x01\x04\x0a\x00", b"\xde\xad"]
)
def test_trailing_junk(data: bytes, message: Message, junk: bytes) -> None:
    if _has_end(data):
        # After END, anything is padding.
        assert decode_message(data + junk) == message
    else:
        # Without END the junk is read as options: it must parse or be rejected, cleanly.
        with contextlib.suppress(MalformedPacket):
            decode_message(data + junk)


def _has_end(data: bytes) -> bool:
    pos = 240
    while pos < len(data):
        if data[pos] == 255:
            return True
        pos += 1 if data[pos] == 0 else 2 + data[pos + 1]
    return False


# -- the Message API ---------------------------------------------------------------


def test_message_accessors() -> None:
    message = Message(op=2, xid=1, chaddr=MAC, options=ACK_OPTIONS)
    assert message.option(15) == b"example.test"
    assert message.option(99) is None
    assert message.get(99) is None
    assert message.get(15) == "example.test"
    assert message.get(224) == b"\x00opaque\xff"
    assert message.get(121) == (ClasslessRoute(N("10.10.0.0/16"), A("192.168.77.1")),)
    assert message.message_type is MessageType.ACK
    assert Message(op=1, xid=1, chaddr=MAC).message_type is None


@pytest.mark.parametrize(
    "fields",
    [
        {"op": 3},
        {"op": 0},
        {"xid": -1},
        {"xid": 2**32},
        {"secs": 65536},
        {"flags": -1},
        {"htype": 256},
        {"hops": 256},
        {"xid": "1"},
        {"chaddr": bytes(17)},
        {"chaddr": "02:77:00:00:00:10"},
        {"sname": bytes(65)},
        {"file": bytes(129)},
        {"sname": b"name\x00"},
        {"file": b"\x00"},
        {"ciaddr": "10.0.0.1"},
        {"giaddr": None},
        {"options": ((0, b""),)},
        {"options": ((255, b""),)},
        {"options": ((52, b"\x01"),)},
        {"options": ((3, ROUTER_A), (3, ROUTER_B))},
        {"options": ((3, "10.0.0.1"),)},
        {"options": ((3,),)},
        {"options": ([3, ROUTER_A],)},
    ],
)
def test_message_rejects_caller_misuse(fields: dict[str, Any]) -> None:
    base: dict[str, Any] = {"op": 1, "xid": 1, "chaddr": MAC}
    with pytest.raises(ValueError):
        Message(**(base | fields))


def test_encode_pads_to_the_bootp_minimum() -> None:
    assert len(encode_message(Message(op=1, xid=1, chaddr=MAC))) == 300


def test_encode_refuses_a_message_over_max_size() -> None:
    big = Message(op=1, xid=1, chaddr=MAC, options=((77, bytes(400)),))
    assert len(encode_message(big, max_size=1500)) == 240 + 2 + 255 + 2 + 145 + 1
    with pytest.raises(ValueError, match="does not fit in 576"):
        encode_message(big)


def test_encode_refuses_an_invalid_known_option() -> None:
    bad = Message(op=1, xid=1, chaddr=MAC, options=((1, b"\x01\x02\x03"),))
    with pytest.raises(ValueError, match="option 1"):
        encode_message(bad)


# -- Buffer --------------------------------------------------------------------------


def test_buffer_round_trip() -> None:
    out = Buffer()
    out.push_uint8(1)
    out.push_uint16(0x0203)
    out.push_uint32(0x04050607)
    out.push_ipv4(A("10.0.0.1"))
    out.push_bytes(b"xy")
    assert out.tell() == 13
    data = out.data
    assert data == bytes.fromhex("01020304050607") + bytes([10, 0, 0, 1]) + b"xy"

    buf = Buffer(data)
    assert buf.remaining == 13
    assert buf.data == data
    assert buf.pull_uint8() == 1
    assert buf.pull_uint16() == 0x0203
    assert buf.pull_uint32() == 0x04050607
    assert buf.pull_ipv4() == A("10.0.0.1")
    assert not buf.eof()
    assert buf.pull_bytes(2) == b"xy"
    assert buf.eof()
    buf.seek(1)
    assert buf.tell() == 1
    assert buf.pull_uint16() == 0x0203


@pytest.mark.parametrize(
    "pull",
    [
        lambda b: b.pull_uint8(),
        lambda b: b.pull_uint16(),
        lambda b: b.pull_uint32(),
        lambda b: b.pull_ipv4(),
        lambda b: b.pull_bytes(1),
        lambda b: b.pull_bytes(-1),
        lambda b: b.seek(1),
        lambda b: b.seek(-1),
    ],
)
def test_buffer_reading_past_the_end_is_malformed(pull: Any) -> None:
    buf = Buffer(b"")
    with pytest.raises(MalformedPacket):
        pull(buf)


def test_buffer_restrict_to_bounds_and_checks_consumption() -> None:
    buf = Buffer(b"\x00\x01\x02\x03\x04")
    with buf.restrict_to(2):
        assert buf.remaining == 2
        assert buf.pull_uint16() == 1
        assert buf.eof()
    assert buf.remaining == 3

    with pytest.raises(MalformedPacket, match="runs past"), buf.restrict_to(4):
        pass
    with pytest.raises(MalformedPacket, match="need 4 bytes"), buf.restrict_to(2):
        buf.pull_uint32()
    assert buf.tell() == 2  # the failed read moved nothing and the limit is gone
    with pytest.raises(MalformedPacket, match="1 unparsed"), buf.restrict_to(2):
        buf.pull_uint8()
    assert (buf.tell(), buf.remaining) == (3, 2)


def test_buffer_write_misuse() -> None:
    with pytest.raises(TypeError):
        Buffer(b"read only").push_uint8(1)
    out = Buffer()
    for push, value in (
        (out.push_uint8, 256),
        (out.push_uint16, 65536),
        (out.push_uint32, 2**32),
        (out.push_uint8, -1),
    ):
        with pytest.raises(ValueError, match="does not fit"):
            push(value)
    assert out.data == b""
