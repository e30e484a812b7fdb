"""Ethernet II frames carrying IPv4/UDP or ARP, built and parsed whole.

The network process only moves bytes between its packet socket and the engine;
the engine builds and parses complete frames with this module, so every byte
from the wire is checked in the one process that holds nothing.

Decoding is strict (docs/dhcp-codec.md): Ethernet II with ethertype 0x0800
(an 802.1Q tag is rejected), IPv4 version 4 with IHL >= 5 (IP options are
skipped), header checksum verified, total length within the frame, no
fragments, protocol UDP, UDP length equal to the IP payload length, UDP
checksum verified unless it is zero (or the caller knows the kernel has not
filled it in: veth and local traffic with checksum offload). Bytes beyond the IP total length are
Ethernet padding and are ignored. Everything wrong raises `MalformedFrame`.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Final

from privsep._errors import MalformedPacket

ETH_P_IP: Final = 0x0800
ETH_P_ARP: Final = 0x0806
BROADCAST_MAC: Final = b"\xff" * 6
ARP_REQUEST: Final = 1
ARP_REPLY: Final = 2
IPPROTO_UDP: Final = 17

_ETH: Final = struct.Struct("!6s6sH")
_IP: Final = struct.Struct("!BBHHHBBH4s4s")
_UDP: Final = struct.Struct("!HHHH")
_ARP: Final = struct.Struct("!HHBBH6s4s6s4s")
_MAX_UDP_PAYLOAD: Final = 0xFFFF - _IP.size - _UDP.size


class MalformedFrame(MalformedPacket):
    """A frame whose Ethernet, IPv4, UDP or ARP framing is wrong."""


def _mac(value: object, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != 6:
        raise ValueError(f"{name} must be 6 bytes")


def _address(value: object, name: str) -> None:
    if not isinstance(value, IPv4Address):
        raise ValueError(f"{name} must be an IPv4Address")


def _u16(value: object, name: str) -> None:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must be 0..65535")


@dataclass(frozen=True, slots=True)
class UdpFrame:
    """A UDP datagram in an IPv4 packet in an Ethernet II frame."""

    src_mac: bytes
    dst_mac: bytes
    src_ip: IPv4Address
    dst_ip: IPv4Address
    src_port: int
    dst_port: int
    payload: bytes

    def __post_init__(self) -> None:
        _mac(self.src_mac, "src_mac")
        _mac(self.dst_mac, "dst_mac")
        _address(self.src_ip, "src_ip")
        _address(self.dst_ip, "dst_ip")
        _u16(self.src_port, "src_port")
        _u16(self.dst_port, "dst_port")
        if not isinstance(self.payload, bytes) or len(self.payload) > _MAX_UDP_PAYLOAD:
            raise ValueError(f"payload must be bytes of at most {_MAX_UDP_PAYLOAD}")


@dataclass(frozen=True, slots=True)
class ArpPacket:
    """An Ethernet/IPv4 ARP packet (RFC 826). RFC 5227: a probe has sender_ip
    0.0.0.0, an announcement has sender_ip == target_ip."""

    op: int
    sender_mac: bytes
    sender_ip: IPv4Address
    target_mac: bytes
    target_ip: IPv4Address

    def __post_init__(self) -> None:
        _u16(self.op, "op")
        _mac(self.sender_mac, "sender_mac")
        _mac(self.target_mac, "target_mac")
        _address(self.sender_ip, "sender_ip")
        _address(self.target_ip, "target_ip")


def internet_checksum(data: bytes) -> int:
    """RFC 1071 ones' complement sum, complemented. 0 over data that includes
    a correct checksum."""
    if len(data) % 2:
        data += b"\x00"
    # The ones' complement sum is byte-order independent (RFC 1071 2.B): add the
    # 16-bit words in native order, then read the folded sum's bytes as network order.
    total = sum(memoryview(data).cast("H"))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~int.from_bytes(total.to_bytes(2, sys.byteorder), "big") & 0xFFFF


def _pseudo_header(src: bytes, dst: bytes, udp_length: int) -> bytes:
    return src + dst + struct.pack("!BBH", 0, IPPROTO_UDP, udp_length)


def _ethernet(frame: bytes, ethertype: int) -> tuple[bytes, bytes]:
    if len(frame) < _ETH.size:
        raise MalformedFrame("frame shorter than an Ethernet header", len(frame))
    dst, src, kind = _ETH.unpack_from(frame)
    if kind != ethertype:
        raise MalformedFrame(f"ethertype {kind:#06x}, expected {ethertype:#06x}", 12)
    return dst, src


def decode_udp_frame(frame: bytes, *, check_udp_checksum: bool = True) -> UdpFrame:
    """Parse an Ethernet/IPv4/UDP frame. Raises `MalformedFrame`.

    Pass `check_udp_checksum=False` only for a frame the kernel marked
    TP_STATUS_CSUMNOTREADY (PACKET_AUXDATA): a locally generated or veth frame
    whose checksum offload has not filled the UDP checksum in yet. The IPv4
    header checksum is always verified.
    """
    frame = bytes(frame)
    dst_mac, src_mac = _ethernet(frame, ETH_P_IP)
    ip_start = _ETH.size
    if len(frame) < ip_start + _IP.size:
        raise MalformedFrame("frame shorter than an IPv4 header", len(frame))
    (ver_ihl, _tos, total, _ident, frag, _ttl, proto, _csum, src, dst) = _IP.unpack_from(
        frame, ip_start
    )
    if ver_ihl >> 4 != 4:
        raise MalformedFrame(f"IP version {ver_ihl >> 4}", ip_start)
    header_len = (ver_ihl & 0x0F) * 4
    if header_len < _IP.size:
        raise MalformedFrame(f"IPv4 header length {header_len}", ip_start)
    if total < header_len or ip_start + total > len(frame):
        raise MalformedFrame(f"IPv4 total length {total} does not fit the frame", ip_start + 2)
    if internet_checksum(frame[ip_start : ip_start + header_len]):
        raise MalformedFrame("bad IPv4 header checksum", ip_start + 10)
    if frag & 0x3FFF:
        raise MalformedFrame("IPv4 fragment", ip_start + 6)
    if proto != IPPROTO_UDP:
        raise MalformedFrame(f"IP protocol {proto}, expected UDP", ip_start + 9)
    udp_start = ip_start + header_len
    udp_end = ip_start + total
    if udp_end - udp_start < _UDP.size:
        raise MalformedFrame("IPv4 payload shorter than a UDP header", udp_start)
    src_port, dst_port, udp_length, udp_csum = _UDP.unpack_from(frame, udp_start)
    if udp_length != udp_end - udp_start:
        raise MalformedFrame(
            f"UDP length {udp_length}, IPv4 payload is {udp_end - udp_start}", udp_start + 4
        )
    segment = frame[udp_start:udp_end]
    if (
        check_udp_checksum
        and udp_csum
        and internet_checksum(_pseudo_header(src, dst, udp_length) + segment)
    ):
        raise MalformedFrame("bad UDP checksum", udp_start + 6)
    return UdpFrame(
        src_mac=src_mac,
        dst_mac=dst_mac,
        src_ip=IPv4Address(src),
        dst_ip=IPv4Address(dst),
        src_port=src_port,
        dst_port=dst_port,
        payload=segment[_UDP.size :],
    )


def encode_udp_frame(frame: UdpFrame, *, ip_id: int = 0, ttl: int = 64) -> bytes:
    """Build the Ethernet/IPv4/UDP frame for `frame`, checksums included."""
    _u16(ip_id, "ip_id")
    if not isinstance(ttl, int) or not 1 <= ttl <= 255:
        raise ValueError("ttl must be 1..255")
    src = frame.src_ip.packed
    dst = frame.dst_ip.packed
    udp_length = _UDP.size + len(frame.payload)
    udp = _UDP.pack(frame.src_port, frame.dst_port, udp_length, 0) + frame.payload
    csum = internet_checksum(_pseudo_header(src, dst, udp_length) + udp) or 0xFFFF
    udp = udp[:6] + csum.to_bytes(2, "big") + udp[8:]
    header = _IP.pack(0x45, 0, _IP.size + udp_length, ip_id, 0, ttl, IPPROTO_UDP, 0, src, dst)
    header = header[:10] + internet_checksum(header).to_bytes(2, "big") + header[12:]
    return _ETH.pack(frame.dst_mac, frame.src_mac, ETH_P_IP) + header + udp


def decode_arp_frame(frame: bytes) -> tuple[bytes, bytes, ArpPacket]:
    """Parse an Ethernet/ARP frame into (destination MAC, source MAC, packet).

    Only Ethernet/IPv4 ARP (htype 1, ptype 0x0800, 6/4 address lengths) is
    accepted; trailing padding is ignored. Raises `MalformedFrame`.
    """
    frame = bytes(frame)
    dst, src = _ethernet(frame, ETH_P_ARP)
    if len(frame) < _ETH.size + _ARP.size:
        raise MalformedFrame("frame shorter than an ARP packet", len(frame))
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(frame, _ETH.size)
    if (htype, ptype, hlen, plen) != (1, ETH_P_IP, 6, 4):
        raise MalformedFrame("ARP for something other than Ethernet/IPv4", _ETH.size)
    if op not in (ARP_REQUEST, ARP_REPLY):
        raise MalformedFrame(f"ARP op {op}", _ETH.size + 6)
    return dst, src, ArpPacket(op, sha, IPv4Address(spa), tha, IPv4Address(tpa))


def encode_arp_frame(dst_mac: bytes, src_mac: bytes, arp: ArpPacket) -> bytes:
    """Build an Ethernet/ARP frame (unpadded; the driver pads to the minimum)."""
    _mac(dst_mac, "dst_mac")
    _mac(src_mac, "src_mac")
    return _ETH.pack(dst_mac, src_mac, ETH_P_ARP) + _ARP.pack(
        1,
        ETH_P_IP,
        6,
        4,
        arp.op,
        arp.sender_mac,
        arp.sender_ip.packed,
        arp.target_mac,
        arp.target_ip.packed,
    )
