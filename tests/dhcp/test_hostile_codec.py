"""Hostile input at the codec level (DESIGN.md 5): each attack class is its own test.

The answer is always the same: `MalformedPacket` (or a subclass), never another
exception, never a half-decoded message. Engine-level attacks (wrong xid, NAK
from another server, lease times, hijacking routes) are tested with the engine.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address
from typing import Any

import dpkt
import pytest

from privsep._errors import MalformedPacket
from privsep.services.dhcp._frames import MalformedFrame, decode_udp_frame
from privsep.services.dhcp._message import MAGIC_COOKIE, decode_message
from privsep.services.dhcp._options import MalformedOption, decode_option

MAC = bytes.fromhex("027700000010")


def header(*, op: int = 2, hlen: int = 6, sname: bytes = b"", file: bytes = b"") -> bytes:
    return (
        struct.pack("!BBBBIHH", op, 1, hlen, 0, 0x11223344, 0, 0)
        + bytes(16)
        + MAC.ljust(16, b"\x00")
        + sname.ljust(64, b"\x00")
        + file.ljust(128, b"\x00")
        + MAGIC_COOKIE
    )


def message(options: bytes, **fields: Any) -> bytes:
    return (header(**fields) + options).ljust(300, b"\x00")


def opt(code: int, payload: bytes) -> bytes:
    return bytes((code, len(payload))) + payload


ACK = opt(53, b"\x05")


# -- option lengths that do not match the type ----------------------------------------


def _valid_length(code: int, length: int) -> bool:
    if code in (1, 51, 54):
        return length == 4
    return length > 0 and length % 4 == 0  # 3, 6: lists of addresses


@pytest.mark.parametrize("length", range(256))
@pytest.mark.parametrize("code", [1, 3, 6, 51, 54])
def test_option_length_not_matching_its_type(code: int, length: int) -> None:
    data = message(ACK + opt(code, bytes(range(length))) + b"\xff")
    if _valid_length(code, length):
        assert len(decode_message(data).option(code) or b"") == length
    else:
        with pytest.raises(MalformedOption) as info:
            decode_message(data)
        assert info.value.code == code


def test_option_running_past_the_packet_end() -> None:
    data = header() + ACK + b"\x03\x08\x0a\x00\x00\x01"  # claims 8 bytes, has 4
    with pytest.raises(MalformedPacket, match="option 3 runs past the end") as info:
        decode_message(data)
    assert info.value.offset == 243


def test_option_length_byte_missing_at_the_end() -> None:
    with pytest.raises(MalformedPacket, match="option 3 has no length byte"):
        decode_message(header() + ACK + b"\x03")


def test_missing_end_is_tolerated_on_an_option_boundary() -> None:
    # Documented choice: the end of the area is as good as END; only a cut option is bad.
    decoded = decode_message(header() + ACK + opt(54, bytes(4)))
    assert [code for code, _ in decoded.options] == [53, 54]


def test_overload_set_again_inside_file() -> None:
    data = message(ACK + opt(52, b"\x01") + b"\xff", file=opt(52, b"\x01") + b"\xff")
    with pytest.raises(MalformedPacket, match=r"overload .* inside file/sname"):
        decode_message(data)


def test_overload_set_again_inside_sname() -> None:
    data = message(ACK + opt(52, b"\x03") + b"\xff", sname=opt(52, b"\x02") + b"\xff")
    with pytest.raises(MalformedPacket, match="inside file/sname"):
        decode_message(data)


def test_overload_repeated_in_the_options_area() -> None:
    data = message(ACK + opt(52, b"\x01") + opt(52, b"\x01") + b"\xff", file=b"\xff")
    with pytest.raises(MalformedPacket, match=r"overload .* repeated"):
        decode_message(data)


def test_overload_with_trailing_garbage() -> None:
    data = message(ACK + opt(52, b"\x01\xff") + b"\xff", file=b"\xff")
    with pytest.raises(MalformedOption, match="option 52"):
        decode_message(data)


@pytest.mark.parametrize("value", [0, 4, 255])
def test_overload_value_out_of_range(value: int) -> None:
    with pytest.raises(MalformedOption, match="overload value"):
        decode_message(message(ACK + opt(52, bytes((value,))) + b"\xff"))


def test_overloaded_file_option_cannot_run_into_sname() -> None:
    # The file area is exactly 128 bytes: an option claiming more must not borrow bytes.
    data = message(ACK + opt(52, b"\x01") + b"\xff", file=bytes(120) + b"\x0f\x10abcdef")
    with pytest.raises(MalformedPacket, match="option 15 runs past the end of its area"):
        decode_message(data)


def test_overload_after_end_is_not_applied() -> None:
    data = message(ACK + b"\xff" + opt(52, b"\x01"), file=opt(15, b"hidden") + b"\xff")
    decoded = decode_message(data)
    assert decoded.option(15) is None
    assert decoded.file == opt(15, b"hidden") + b"\xff"


# -- option 119: RFC 1035 compression ------------------------------------------------


def test_domain_search_self_pointer() -> None:
    with pytest.raises(MalformedOption, match="does not point backwards"):
        decode_option(119, b"\xc0\x00")


def test_domain_search_two_pointer_cycle() -> None:
    # name 1 at 0 points to 4; name 2 at 4 points back to 0: a cycle through two pointers.
    with pytest.raises(MalformedOption, match="does not point backwards"):
        decode_option(119, b"\x01a\xc0\x04\x01b\xc0\x00")


def test_domain_search_forward_pointer() -> None:
    with pytest.raises(MalformedOption, match="does not point backwards"):
        decode_option(119, b"\xc0\x02\x01a\x00")


def test_domain_search_pointer_back_into_its_own_labels() -> None:
    # Strictly backwards but into the same run of labels: would loop forever.
    with pytest.raises(MalformedOption, match="does not point backwards"):
        decode_option(119, b"\x01a\xc0\x00")


def test_domain_search_pointer_outside_the_option() -> None:
    with pytest.raises(MalformedOption, match="does not point backwards"):
        decode_option(119, b"\x01a\x00\xff\xff")


def test_domain_search_truncated_pointer_and_labels() -> None:
    for payload in (b"\x01a\x00\xc0", b"\x05abc", b"\x01a", b"\x03abc\x01"):
        with pytest.raises(MalformedOption):
            decode_option(119, payload)


@pytest.mark.parametrize("label_type", [0x40, 0x80])
def test_domain_search_reserved_label_types(label_type: int) -> None:
    with pytest.raises(MalformedOption, match="reserved label type"):
        decode_option(119, bytes((label_type | 1,)) + b"a\x00")


def test_domain_search_long_pointer_chain_is_bounded_by_the_name_limit() -> None:
    # Each name is one 3-letter label plus a pointer to the previous name: legal and
    # backwards, but name k is 4k+2 bytes long, so the 64th crosses the 255-byte limit.
    payload = bytearray(b"\x01a\x00")
    starts = [0]
    for _ in range(99):
        starts.append(len(payload))
        payload += b"\x03bbb" + bytes((0xC0 | (starts[-2] >> 8), starts[-2] & 0xFF))
    with pytest.raises(MalformedOption, match="255"):
        decode_option(119, bytes(payload))
    names = decode_option(119, bytes(payload[: starts[60]]))
    assert isinstance(names, tuple)
    assert len(names) == 60
    assert names[-1] == ".".join(["bbb"] * 59 + ["a"])


def test_domain_search_rejects_dangerous_label_bytes() -> None:
    for label in (b"a b", b"a\x00b", b"a\nb", b"a.b", b"a\\b", "\u00e9".encode()):
        with pytest.raises(MalformedOption, match="printable ASCII"):
            decode_option(119, bytes((len(label),)) + label + b"\x00")


# -- option 121 -------------------------------------------------------------------------


def test_classless_route_prefix_33() -> None:
    with pytest.raises(MalformedOption, match="prefix length 33"):
        decode_option(121, bytes([33, 10, 0, 0, 1, 10, 0, 0, 1]))


def test_classless_route_truncated_at_every_offset() -> None:
    payload = bytes([24, 10, 1, 2, 10, 0, 0, 1, 0, 10, 0, 0, 1])
    decode_option(121, payload)
    for cut in (*range(1, 8), *range(9, 13)):
        with pytest.raises(MalformedOption, match="truncated route"):
            decode_option(121, payload[:cut])
    with pytest.raises(MalformedOption, match="empty"):
        decode_option(121, b"")


def test_classless_route_in_a_message_rejects_the_message() -> None:
    with pytest.raises(MalformedOption, match="option 121"):
        decode_message(message(ACK + opt(121, bytes([33, 1, 2, 3, 4, 5, 6, 7, 8])) + b"\xff"))


# -- strings bound for hooks ------------------------------------------------------------

HOSTILE_TEXT = [
    "$(reboot)",
    "`id`",
    "a; rm -rf /",
    "'quoted' \"double\"",
    "line1\nline2",
    "() { :; }; echo shellshock",
    "tab\there",
    "|&<>*?[]~",
]


@pytest.mark.parametrize("text", HOSTILE_TEXT)
@pytest.mark.parametrize("code", [12, 15, 56, 66, 67, 114, 252])
def test_shell_metacharacters_in_string_options_stay_inert_text(code: int, text: str) -> None:
    decoded = decode_message(message(ACK + opt(code, text.encode()) + b"\xff"))
    assert decoded.get(code) == text  # data, exactly as sent; nothing interprets it here


def test_nul_inside_a_string_option_rejects_the_message() -> None:
    with pytest.raises(MalformedOption, match="NUL inside a string"):
        decode_message(message(ACK + opt(12, b"host\x00; reboot") + b"\xff"))


def test_trailing_nuls_of_a_string_option_are_stripped() -> None:
    assert decode_message(message(ACK + opt(15, b"lan\x00\x00") + b"\xff")).get(15) == "lan"


def test_string_option_that_is_not_utf8() -> None:
    with pytest.raises(MalformedOption, match="not UTF-8"):
        decode_option(15, b"\xff\xfe")


# -- header -------------------------------------------------------------------------------


def test_wrong_magic_cookie() -> None:
    data = bytearray(message(ACK + b"\xff"))
    data[236:240] = b"\x63\x82\x53\x64"
    with pytest.raises(MalformedPacket, match="magic cookie"):
        decode_message(bytes(data))


@pytest.mark.parametrize("hlen", [17, 100, 255])
def test_hlen_over_16(hlen: int) -> None:
    with pytest.raises(MalformedPacket, match=f"hlen {hlen}"):
        decode_message(message(ACK + b"\xff", hlen=hlen))


@pytest.mark.parametrize("op", [0, 3, 255])
def test_unknown_op(op: int) -> None:
    with pytest.raises(MalformedPacket, match=f"op {op}"):
        decode_message(message(ACK + b"\xff", op=op))


@pytest.mark.parametrize("value", [0, 19, 255])
def test_unknown_message_type(value: int) -> None:
    with pytest.raises(MalformedOption, match="unknown message type"):
        decode_message(message(opt(53, bytes((value,))) + b"\xff"))


def test_one_bad_known_option_rejects_the_whole_message() -> None:
    good = ACK + opt(54, bytes(4)) + opt(51, b"\x00\x00\x0e\x10")
    decode_message(message(good + b"\xff"))
    with pytest.raises(MalformedOption, match="option 26"):
        decode_message(message(good + opt(26, b"\x05") + b"\xff"))


def test_thousands_of_repeated_options_join_without_trouble() -> None:
    body = opt(6, bytes(4)) * 2000
    decoded = decode_message(header() + body + b"\xff")
    assert len(decoded.option(6) or b"") == 8000


# -- frames -------------------------------------------------------------------------------


def _sum16(data: bytes) -> int:
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) + (data[i + 1] if i + 1 < len(data) else 0)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(payload: bytes = b"dhcp", **ip_fields: Any) -> bytes:
    udp = dpkt.udp.UDP(sport=67, dport=68, data=payload)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(
        src=IPv4Address("192.168.77.1").packed,
        dst=IPv4Address("192.168.77.100").packed,
        p=17,
        data=udp,
        **ip_fields,
    )
    ip.len = len(ip)
    return bytes(dpkt.ethernet.Ethernet(dst=MAC, src=b"\x02" * 6, type=0x0800, data=ip))


def with_ip_header(frame: bytes, offset: int, value: bytes) -> bytes:
    """Overwrite IPv4 header bytes and fix the header checksum, so only `value` is wrong."""
    raw = bytearray(frame)
    raw[14 + offset : 14 + offset + len(value)] = value
    raw[24:26] = b"\x00\x00"
    raw[24:26] = _sum16(bytes(raw[14:34])).to_bytes(2, "big")
    return bytes(raw)


def test_frame_is_valid_before_the_mutations() -> None:
    assert decode_udp_frame(udp_frame()).payload == b"dhcp"


def test_frame_bad_ip_header_checksum() -> None:
    raw = bytearray(udp_frame())
    raw[24] ^= 0x01
    with pytest.raises(MalformedFrame, match="bad IPv4 header checksum"):
        decode_udp_frame(bytes(raw))


def test_frame_bad_udp_checksum() -> None:
    raw = bytearray(udp_frame())
    raw[-1] ^= 0x01  # payload changed, checksum not
    with pytest.raises(MalformedFrame, match="bad UDP checksum"):
        decode_udp_frame(bytes(raw))


def test_frame_fragment_with_more_fragments_set() -> None:
    with pytest.raises(MalformedFrame, match="fragment"):
        decode_udp_frame(with_ip_header(udp_frame(), 6, b"\x20\x00"))


def test_frame_fragment_with_an_offset() -> None:
    with pytest.raises(MalformedFrame, match="fragment"):
        decode_udp_frame(with_ip_header(udp_frame(), 6, b"\x00\x10"))


@pytest.mark.parametrize("proto", [1, 6, 41, 255])
def test_frame_wrong_ip_protocol(proto: int) -> None:
    with pytest.raises(MalformedFrame, match=f"IP protocol {proto}"):
        decode_udp_frame(with_ip_header(udp_frame(), 9, bytes((proto,))))


def test_frame_ip_total_length_beyond_the_frame() -> None:
    frame = udp_frame()
    with pytest.raises(MalformedFrame, match="total length"):
        decode_udp_frame(frame[:-1])
    with pytest.raises(MalformedFrame, match="total length"):
        decode_udp_frame(with_ip_header(frame, 2, (len(frame) - 14 + 1).to_bytes(2, "big")))


def test_frame_ip_total_length_shorter_than_its_header() -> None:
    with pytest.raises(MalformedFrame, match="total length 19"):
        decode_udp_frame(with_ip_header(udp_frame(), 2, (19).to_bytes(2, "big")))


def test_frame_ip_payload_too_short_for_udp() -> None:
    with pytest.raises(MalformedFrame, match="shorter than a UDP header"):
        decode_udp_frame(with_ip_header(udp_frame(), 2, (27).to_bytes(2, "big")))


@pytest.mark.parametrize("ihl", [0, 4])
def test_frame_ip_header_length_below_5_words(ihl: int) -> None:
    with pytest.raises(MalformedFrame, match="header length"):
        decode_udp_frame(with_ip_header(udp_frame(), 0, bytes((0x40 | ihl,))))


def test_frame_ip_version_6() -> None:
    with pytest.raises(MalformedFrame, match="IP version 6"):
        decode_udp_frame(with_ip_header(udp_frame(), 0, b"\x65"))


def test_frame_with_an_8021q_tag() -> None:
    frame = udp_frame()
    tagged = frame[:12] + b"\x81\x00\x00\x05" + frame[12:]
    with pytest.raises(MalformedFrame, match="ethertype 0x8100"):
        decode_udp_frame(tagged)


def test_frame_udp_length_disagreeing_with_ip() -> None:
    raw = bytearray(udp_frame())
    raw[38:40] = (len(raw) - 34 - 1).to_bytes(2, "big")
    with pytest.raises(MalformedFrame, match="UDP length"):
        decode_udp_frame(bytes(raw))


def test_frame_truncated_at_every_offset() -> None:
    frame = udp_frame(b"x" * 40)
    for cut in range(len(frame)):
        with pytest.raises(MalformedFrame):
            decode_udp_frame(frame[:cut])
