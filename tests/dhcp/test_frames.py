"""Ethernet/IPv4/UDP and ARP frames: built and parsed whole, cross-checked with dpkt."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address
from typing import Any

import dpkt
import pytest

from privsep.services.dhcp._frames import (
    BROADCAST_MAC,
    ETH_P_ARP,
    ETH_P_IP,
    ArpPacket,
    MalformedFrame,
    UdpFrame,
    decode_arp_frame,
    decode_udp_frame,
    encode_arp_frame,
    encode_udp_frame,
    internet_checksum,
)

A = IPv4Address
CLIENT_MAC = bytes.fromhex("027700000010")
SERVER_MAC = bytes.fromhex("02aabbccddee")


def dpkt_frame(
    payload: bytes,
    *,
    src: str = "192.168.77.1",
    dst: str = "192.168.77.100",
    sport: int = 67,
    dport: int = 68,
    ip_id: int = 0,
    ttl: int = 64,
    **ip_fields: Any,
) -> bytes:
    """A frame built by dpkt, which computes both checksums itself."""
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(
        src=A(src).packed,
        dst=A(dst).packed,
        p=dpkt.ip.IP_PROTO_UDP,
        id=ip_id,
        ttl=ttl,
        data=udp,
        **ip_fields,
    )
    ip.len = len(ip)
    eth = dpkt.ethernet.Ethernet(dst=CLIENT_MAC, src=SERVER_MAC, type=ETH_P_IP, data=ip)
    return bytes(eth)


PAYLOADS = [b"", b"x", b"odd", b"\x00" * 300, bytes(range(256)) * 5]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: f"{len(p)}B")
def test_encode_udp_frame_is_byte_identical_to_dpkt(payload: bytes) -> None:
    frame = UdpFrame(
        SERVER_MAC, CLIENT_MAC, A("192.168.77.1"), A("192.168.77.100"), 67, 68, payload
    )
    assert encode_udp_frame(frame, ip_id=0, ttl=64) == dpkt_frame(payload)


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: f"{len(p)}B")
def test_decode_udp_frame_reads_a_dpkt_frame(payload: bytes) -> None:
    frame = decode_udp_frame(dpkt_frame(payload, ip_id=0x1234, ttl=1))
    assert frame == UdpFrame(
        SERVER_MAC, CLIENT_MAC, A("192.168.77.1"), A("192.168.77.100"), 67, 68, payload
    )


def test_udp_frame_round_trip_with_every_field() -> None:
    frame = UdpFrame(CLIENT_MAC, BROADCAST_MAC, A("0.0.0.0"), A("255.255.255.255"), 68, 67, b"hi")
    raw = encode_udp_frame(frame, ip_id=65535, ttl=255)
    assert decode_udp_frame(raw) == frame
    assert raw[12:14] == b"\x08\x00"
    assert raw[14 + 8] == 255  # ttl


def test_udp_checksum_that_sums_to_zero_is_sent_as_ffff() -> None:
    # Find a payload whose checksum computes to 0: it must go out as 0xFFFF (RFC 768).
    base = UdpFrame(SERVER_MAC, CLIENT_MAC, A("10.0.0.1"), A("10.0.0.2"), 67, 68, b"\x00\x00")
    zeroed = encode_udp_frame(base)
    csum = int.from_bytes(zeroed[40:42], "big")
    # Choosing the payload word equal to the checksum makes the new sum complement to 0.
    fixed = UdpFrame(
        SERVER_MAC, CLIENT_MAC, A("10.0.0.1"), A("10.0.0.2"), 67, 68, csum.to_bytes(2, "big")
    )
    raw = encode_udp_frame(fixed)
    assert raw[40:42] == b"\xff\xff"
    assert decode_udp_frame(raw) == fixed


def test_ip_options_are_skipped() -> None:
    options = b"\x94\x04\x00\x00"  # router alert
    raw = dpkt_frame(b"payload", opts=options, hl=6)
    assert raw[14] == 0x46
    assert decode_udp_frame(raw).payload == b"payload"


def test_ethernet_padding_beyond_the_ip_length_is_ignored() -> None:
    raw = dpkt_frame(b"p")
    assert len(raw) < 60
    assert decode_udp_frame(raw + b"\x00" * (60 - len(raw))).payload == b"p"


def test_zero_udp_checksum_means_not_computed() -> None:
    raw = bytearray(dpkt_frame(b"payload"))
    raw[40:42] = b"\x00\x00"
    assert decode_udp_frame(bytes(raw)).payload == b"payload"


def test_dont_fragment_is_not_a_fragment() -> None:
    raw = dpkt_frame(b"p", df=1)
    assert raw[20] == 0x40
    assert decode_udp_frame(raw).payload == b"p"


def test_internet_checksum_of_rfc1071_example() -> None:
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert internet_checksum(data) == ~0xDDF2 & 0xFFFF
    assert internet_checksum(data + (~0xDDF2 & 0xFFFF).to_bytes(2, "big")) == 0


def test_captured_frame_carries_the_captured_payload(capture: Any) -> None:
    frame = decode_udp_frame(capture.frame, check_udp_checksum=False)
    assert frame.payload == capture.payload
    assert {frame.src_port, frame.dst_port} == {67, 68}


def test_captured_frames_fail_the_udp_checksum_only_where_offload_left_it_unset(
    capture: Any,
) -> None:
    # dnsmasq answers through a UDP socket; on veth the kernel leaves the UDP
    # checksum to "hardware", so the frame on the wire (and on a packet socket,
    # flagged TP_STATUS_CSUMNOTREADY) carries a partial sum. Everyone else
    # builds the frame in user space with a real checksum.
    from_dnsmasq_socket = capture.server == "dnsmasq" and capture.payload[0] == 2
    try:
        decode_udp_frame(capture.frame)
    except MalformedFrame as exc:
        assert exc.reason == "bad UDP checksum"
        assert from_dnsmasq_socket
    else:
        assert not from_dnsmasq_socket


@pytest.mark.parametrize(
    "fields",
    [
        {"src_mac": b"\x00" * 5},
        {"dst_mac": "ff:ff:ff:ff:ff:ff"},
        {"src_ip": "10.0.0.1"},
        {"dst_ip": None},
        {"src_port": 65536},
        {"dst_port": -1},
        {"payload": "text"},
        {"payload": bytes(65508)},
    ],
)
def test_udp_frame_rejects_caller_misuse(fields: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "src_mac": CLIENT_MAC,
        "dst_mac": BROADCAST_MAC,
        "src_ip": A("0.0.0.0"),
        "dst_ip": A("255.255.255.255"),
        "src_port": 68,
        "dst_port": 67,
        "payload": b"",
    }
    with pytest.raises(ValueError, match="must be"):
        UdpFrame(**(base | fields))


@pytest.mark.parametrize(("ip_id", "ttl"), [(-1, 64), (65536, 64), (0, 0), (0, 256)])
def test_encode_udp_frame_rejects_bad_ip_fields(ip_id: int, ttl: int) -> None:
    frame = UdpFrame(CLIENT_MAC, BROADCAST_MAC, A("0.0.0.0"), A("255.255.255.255"), 68, 67, b"")
    with pytest.raises(ValueError, match="must be"):
        encode_udp_frame(frame, ip_id=ip_id, ttl=ttl)


# -- ARP -------------------------------------------------------------------------------


def dpkt_arp(op: int, sha: bytes, spa: str, tha: bytes, tpa: str) -> bytes:
    arp = dpkt.arp.ARP(op=op, sha=sha, spa=A(spa).packed, tha=tha, tpa=A(tpa).packed)
    return bytes(dpkt.ethernet.Ethernet(dst=BROADCAST_MAC, src=sha, type=ETH_P_ARP, data=arp))


def test_arp_probe_is_byte_identical_to_dpkt() -> None:
    probe = ArpPacket(1, CLIENT_MAC, A("0.0.0.0"), bytes(6), A("192.168.77.148"))
    ours = encode_arp_frame(BROADCAST_MAC, CLIENT_MAC, probe)
    assert ours == dpkt_arp(1, CLIENT_MAC, "0.0.0.0", bytes(6), "192.168.77.148")
    assert decode_arp_frame(ours) == (BROADCAST_MAC, CLIENT_MAC, probe)


def test_arp_reply_from_dpkt_decodes_with_padding() -> None:
    raw = dpkt_arp(2, SERVER_MAC, "192.168.77.148", CLIENT_MAC, "192.168.77.148")
    dst, src, arp = decode_arp_frame(raw + bytes(18))
    assert (dst, src) == (BROADCAST_MAC, SERVER_MAC)
    assert arp == ArpPacket(2, SERVER_MAC, A("192.168.77.148"), CLIENT_MAC, A("192.168.77.148"))
    assert arp.sender_ip == arp.target_ip  # the shape of an RFC 5227 announcement


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: f[:41], "shorter than an ARP"),
        (lambda f: f[:10], "shorter than an Ethernet"),
        (lambda f: f[:12] + b"\x08\x00" + f[14:], "ethertype"),
        (lambda f: f[:14] + b"\x00\x06" + f[16:], "other than Ethernet/IPv4"),
        (lambda f: f[:16] + b"\x86\xdd" + f[18:], "other than Ethernet/IPv4"),
        (lambda f: f[:18] + b"\x08" + f[19:], "other than Ethernet/IPv4"),
        (lambda f: f[:19] + b"\x10" + f[20:], "other than Ethernet/IPv4"),
        (lambda f: f[:20] + b"\x00\x03" + f[22:], "ARP op 3"),
    ],
)
def test_arp_frame_rejects(mutate: Any, reason: str) -> None:
    good = dpkt_arp(1, CLIENT_MAC, "0.0.0.0", bytes(6), "10.0.0.1")
    decode_arp_frame(good)
    with pytest.raises(MalformedFrame, match=reason):
        decode_arp_frame(mutate(good))


@pytest.mark.parametrize(
    "fields",
    [
        {"op": 65536},
        {"sender_mac": bytes(7)},
        {"target_mac": None},
        {"sender_ip": "10.0.0.1"},
        {"target_ip": 1},
    ],
)
def test_arp_packet_rejects_caller_misuse(fields: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "op": 1,
        "sender_mac": CLIENT_MAC,
        "sender_ip": A("0.0.0.0"),
        "target_mac": bytes(6),
        "target_ip": A("10.0.0.1"),
    }
    with pytest.raises(ValueError, match="must be"):
        ArpPacket(**(base | fields))


def test_encode_arp_frame_rejects_bad_macs() -> None:
    probe = ArpPacket(1, CLIENT_MAC, A("0.0.0.0"), bytes(6), A("10.0.0.1"))
    with pytest.raises(ValueError, match="dst_mac"):
        encode_arp_frame(b"\xff", CLIENT_MAC, probe)
    with pytest.raises(ValueError, match="src_mac"):
        encode_arp_frame(BROADCAST_MAC, b"", probe)


def test_udp_decoder_refuses_an_arp_frame_and_vice_versa() -> None:
    arp = dpkt_arp(1, CLIENT_MAC, "0.0.0.0", bytes(6), "10.0.0.1")
    with pytest.raises(MalformedFrame, match="ethertype 0x0806"):
        decode_udp_frame(arp)
    with pytest.raises(MalformedFrame, match="ethertype 0x0800"):
        decode_arp_frame(dpkt_frame(b"x"))
    assert struct.unpack("!H", arp[12:14])[0] == ETH_P_ARP
