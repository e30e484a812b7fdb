"""Properties of the codec, checked with hypothesis.

- every valid message survives encode -> decode unchanged;
- every option value survives encode_option -> decode_option unchanged;
- arbitrary bytes give a value or MalformedPacket, never another exception,
  for messages, options, UDP frames and ARP frames.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from privsep._errors import MalformedPacket
from privsep.services.dhcp._frames import (
    ArpPacket,
    MalformedFrame,
    UdpFrame,
    decode_arp_frame,
    decode_udp_frame,
    encode_arp_frame,
    encode_udp_frame,
)
from privsep.services.dhcp._message import MAGIC_COOKIE, Message, decode_message, encode_message
from privsep.services.dhcp._options import (
    OPTIONS,
    ClasslessRoute,
    MalformedOption,
    MessageType,
    OptionKind,
    OptionValue,
    check_option,
    decode_option,
    encode_option,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

addresses = st.integers(0, 2**32 - 1).map(IPv4Address)
labels = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=".\\"),
    min_size=1,
    max_size=20,
)
names = st.lists(labels, max_size=5).map(".".join)
routes = st.builds(
    lambda addr, width, router: ClasslessRoute(
        IPv4Network((int(addr), width), strict=False), router
    ),
    addresses,
    st.integers(0, 32),
    addresses,
)


def _tuples(
    elements: st.SearchStrategy[OptionValue], min_size: int = 1
) -> st.SearchStrategy[OptionValue]:
    return st.lists(elements, min_size=min_size, max_size=6).map(tuple)


KIND_VALUES: dict[OptionKind, st.SearchStrategy[OptionValue]] = {
    OptionKind.IP: addresses,
    OptionKind.IP_LIST: _tuples(addresses),
    OptionKind.IP_PAIRS: st.lists(st.tuples(addresses, addresses), min_size=1, max_size=3).map(
        lambda pairs: tuple(a for pair in pairs for a in pair)
    ),
    OptionKind.U8: st.integers(0, 2**8 - 1),
    OptionKind.U16: st.integers(0, 2**16 - 1),
    OptionKind.U32: st.integers(0, 2**32 - 1),
    OptionKind.I32: st.integers(-(2**31), 2**31 - 1),
    OptionKind.BOOL: st.booleans(),
    OptionKind.FLAG: st.just(True),
    OptionKind.STRING: st.text(
        alphabet=st.characters(exclude_characters="\x00", exclude_categories=("Cs",)),
        max_size=40,
    ),
    OptionKind.DOMAIN_LIST: _tuples(names, min_size=0),
    OptionKind.CLASSLESS_ROUTES: _tuples(routes),
    OptionKind.MESSAGE_TYPE: st.sampled_from(MessageType),
    OptionKind.OVERLOAD: st.sampled_from([1, 2, 3]),
    OptionKind.U8_LIST: _tuples(st.integers(0, 255)),
    OptionKind.CLIENT_ID: st.binary(min_size=2, max_size=20),
    OptionKind.RAW: st.binary(max_size=300),
}

UNKNOWN_CODES = [code for code in range(1, 255) if code not in OPTIONS]


@st.composite
def option_pairs(draw: st.DrawFn) -> tuple[int, OptionValue]:
    code = draw(st.sampled_from(sorted(OPTIONS)) | st.sampled_from(UNKNOWN_CODES))
    kind = OPTIONS[code][1] if code in OPTIONS else OptionKind.RAW
    return code, draw(KIND_VALUES[kind])


@st.composite
def messages(draw: st.DrawFn) -> Message:
    pairs = draw(st.lists(option_pairs(), max_size=12, unique_by=lambda pair: pair[0]))
    options = tuple((code, encode_option(code, value)) for code, value in pairs if code != 52)
    return Message(
        op=draw(st.sampled_from([1, 2])),
        xid=draw(st.integers(0, 2**32 - 1)),
        chaddr=draw(st.binary(max_size=16)),
        ciaddr=draw(addresses),
        yiaddr=draw(addresses),
        siaddr=draw(addresses),
        giaddr=draw(addresses),
        secs=draw(st.integers(0, 2**16 - 1)),
        flags=draw(st.integers(0, 2**16 - 1)),
        htype=draw(st.integers(0, 255)),
        hops=draw(st.integers(0, 255)),
        sname=draw(st.binary(max_size=64)).rstrip(b"\x00"),
        file=draw(st.binary(max_size=128)).rstrip(b"\x00"),
        options=options,
    )


@FAST
@given(messages())
def test_encode_then_decode_gives_the_same_message(message: Message) -> None:
    assert decode_message(encode_message(message, max_size=65535)) == message


@FAST
@given(option_pairs())
def test_encode_option_then_decode_option_gives_the_same_value(
    pair: tuple[int, OptionValue],
) -> None:
    code, value = pair
    assert decode_option(code, encode_option(code, value)) == value


@FAST
@given(st.integers(1, 254), st.binary(max_size=64))
@example(119, b"\x01a\xc0\x00")
@example(121, b"\x21")
def test_any_option_payload_decodes_or_raises_malformed_option(code: int, payload: bytes) -> None:
    try:
        value = decode_option(code, payload)
    except MalformedOption as exc:
        assert exc.code == code
    else:
        assert decode_option(code, encode_option(code, value)) == value


def _verdict(func: Callable[[int, bytes], object], code: int, payload: bytes) -> str:
    try:
        func(code, payload)
    except MalformedOption as exc:
        return f"rejected: {exc}"
    return "accepted"


@st.composite
def compressed_name_lists(draw: st.DrawFn) -> bytes:
    """Name lists compressed the way servers do it, sometimes with one byte corrupted."""
    pool = st.sampled_from(["a", "bb", "ccc", "x" * 63])
    names = draw(st.lists(st.lists(pool, max_size=6), max_size=6))
    out = bytearray()
    seen: dict[tuple[str, ...], int] = {}  # suffix -> offset of its first label
    for name in names:
        for i, label in enumerate(name):
            suffix = tuple(name[i:])
            if suffix in seen and draw(st.booleans()):
                out += bytes((0xC0 | seen[suffix] >> 8, seen[suffix] & 0xFF))
                break
            seen.setdefault(suffix, len(out))
            out += bytes((len(label),)) + label.encode()
        else:
            out.append(0)
    if out and draw(st.booleans()):
        out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
    return bytes(out)


@FAST
@given(st.sampled_from(sorted(OPTIONS)), st.binary(max_size=40))
@example(119, b"\x01a\x00\x01b\xc0\x00\x01c\xc0\x03")
@example(119, b"\x01a\x00\x01b\xc0\x01")
def test_check_option_agrees_with_decode_option(code: int, payload: bytes) -> None:
    assert _verdict(check_option, code, payload) == _verdict(decode_option, code, payload)


@settings(max_examples=400, deadline=None)
@given(compressed_name_lists())
def test_check_option_agrees_with_decode_option_on_name_lists(payload: bytes) -> None:
    assert _verdict(check_option, 119, payload) == _verdict(decode_option, 119, payload)


def _decodes_or_is_malformed(data: bytes) -> None:
    try:
        message = decode_message(data)
    except MalformedPacket:
        return
    assert decode_message(encode_message(message, max_size=65535)) == message
    for code, payload in message.options:  # validated on the way in, so it decodes
        assert message.get(code) == decode_option(code, payload)


@FAST
@given(st.binary(max_size=600))
def test_arbitrary_bytes_give_a_message_or_malformed_packet(data: bytes) -> None:
    _decodes_or_is_malformed(data)


HEADER = bytes([2, 1, 6, 0]) + bytes(232) + MAGIC_COOKIE

option_soup = st.lists(
    st.one_of(
        st.tuples(st.sampled_from([*OPTIONS, 0, 52, 255, 224]), st.binary(max_size=20)).map(
            lambda cp: bytes((cp[0], len(cp[1]))) + cp[1]
        ),
        st.binary(max_size=6),
    ),
    max_size=12,
).map(b"".join)


@FAST
@given(option_soup, st.binary(max_size=64), st.binary(max_size=128))
def test_structured_junk_after_a_valid_header_gives_a_message_or_malformed_packet(
    options: bytes, sname: bytes, file: bytes
) -> None:
    head = bytearray(HEADER)
    head[44 : 44 + len(sname)] = sname
    head[108 : 108 + len(file)] = file
    _decodes_or_is_malformed(bytes(head) + options)


@FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_a_udp_frame_or_malformed_frame(data: bytes) -> None:
    try:
        frame = decode_udp_frame(data)
    except MalformedFrame:
        return
    assert decode_udp_frame(encode_udp_frame(frame)) == frame


macs = st.binary(min_size=6, max_size=6)
udp_frames = st.builds(
    UdpFrame,
    macs,
    macs,
    addresses,
    addresses,
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.binary(max_size=600),
)


@FAST
@given(udp_frames, st.integers(0, 65535), st.integers(1, 255))
def test_udp_frame_round_trip(frame: UdpFrame, ip_id: int, ttl: int) -> None:
    assert decode_udp_frame(encode_udp_frame(frame, ip_id=ip_id, ttl=ttl)) == frame


@FAST
@given(udp_frames, st.data())
def test_a_corrupted_udp_frame_is_rejected_or_still_well_formed(
    frame: UdpFrame, data: st.DataObject
) -> None:
    raw = bytearray(encode_udp_frame(frame))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    try:
        decoded = decode_udp_frame(bytes(raw))
    except MalformedFrame:
        assert index >= 12  # only the Ethernet addresses are unprotected
        return
    # The ones' complement sum misses some swaps; then the fields moved but stayed valid.
    assert isinstance(decoded, UdpFrame)


arp_packets = st.builds(ArpPacket, st.sampled_from([1, 2]), macs, addresses, macs, addresses)


@FAST
@given(macs, macs, arp_packets)
def test_arp_frame_round_trip(dst: bytes, src: bytes, arp: ArpPacket) -> None:
    assert decode_arp_frame(encode_arp_frame(dst, src, arp)) == (dst, src, arp)


@FAST
@given(st.binary(max_size=80))
def test_arbitrary_bytes_give_an_arp_frame_or_malformed_frame(data: bytes) -> None:
    try:
        dst, src, arp = decode_arp_frame(b"\xff" * 12 + b"\x08\x06" + data)
    except MalformedFrame:
        return
    assert decode_arp_frame(encode_arp_frame(dst, src, arp))[2] == arp
