"""The network process's egress check: exactly our DHCP requests and RFC 5227 ARP pass."""

from __future__ import annotations

import contextlib
import json
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privsep.services.dhcp._egress import EgressDenied, EgressPolicy, RateLimiter
from privsep.services.dhcp._frames import (
    ArpPacket,
    UdpFrame,
    encode_arp_frame,
    encode_udp_frame,
    internet_checksum,
)
from privsep.services.dhcp._message import Message, encode_message
from privsep.services.dhcp._options import MessageType

OUR_MAC = bytes.fromhex("027700000010")
OTHER_MAC = bytes.fromhex("027700000099")
SERVER_MAC = bytes.fromhex("027700000001")
BCAST_MAC = b"\xff" * 6
ANY = IPv4Address("0.0.0.0")
BCAST = IPv4Address("255.255.255.255")
CANDIDATE = IPv4Address("192.168.77.150")
LEASED = IPv4Address("192.168.77.148")
SERVER = IPv4Address("192.168.77.1")
OTHER = IPv4Address("192.168.77.77")


def dhcp(
    kind: MessageType = MessageType.DISCOVER,
    *,
    op: int = 1,
    chaddr: bytes = OUR_MAC,
    ciaddr: IPv4Address = ANY,
    htype: int = 1,
) -> bytes:
    return encode_message(
        Message(
            op=op,
            xid=0x1234,
            chaddr=chaddr,
            ciaddr=ciaddr,
            htype=htype,
            options=((53, bytes([kind])),),
        )
    )


def ip_frame(
    payload: bytes | None = None,
    *,
    src_mac: bytes = OUR_MAC,
    dst_mac: bytes = BCAST_MAC,
    src_ip: IPv4Address = ANY,
    dst_ip: IPv4Address = BCAST,
    sport: int = 68,
    dport: int = 67,
    ttl: int = 64,
    frag: int = 0,
    proto: int = 17,
    ip_options: bytes = b"",
    ip_csum: int | None = None,
    udp_csum: int | None = None,
    trailing: bytes = b"",
    ethertype: int = 0x0800,
) -> bytes:
    """Ethernet/IPv4/UDP built field by field; with defaults it equals the codec's encoder."""
    payload = dhcp() if payload is None else payload
    udp_len = 8 + len(payload)
    pseudo = src_ip.packed + dst_ip.packed + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    if udp_csum is None:
        udp_csum = internet_checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", udp_csum) + udp[8:]
    ihl = 5 + len(ip_options) // 4
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        ihl * 4 + len(udp),
        0,
        frag,
        ttl,
        proto,
        0,
        src_ip.packed,
        dst_ip.packed,
    )
    header += ip_options
    if ip_csum is None:
        ip_csum = internet_checksum(header)
    header = header[:10] + struct.pack("!H", ip_csum) + header[12:]
    return dst_mac + src_mac + struct.pack("!H", ethertype) + header + udp + trailing


def arp_frame(
    *,
    op: int = 1,
    sender_ip: IPv4Address = ANY,
    target_ip: IPv4Address = CANDIDATE,
    sender_mac: bytes = OUR_MAC,
    src_mac: bytes = OUR_MAC,
    dst_mac: bytes = BCAST_MAC,
    target_mac: bytes = bytes(6),
    padding: bytes = b"",
) -> bytes:
    packet = ArpPacket(op, sender_mac, sender_ip, target_mac, target_ip)
    return encode_arp_frame(dst_mac, src_mac, packet) + padding


def test_frame_builder_matches_the_codec_encoder() -> None:
    frame = UdpFrame(OUR_MAC, BCAST_MAC, ANY, BCAST, 68, 67, dhcp())
    assert ip_frame() == encode_udp_frame(frame, ttl=64)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], bytes]
    denied: str | None  # a fragment of the reason, or None if the frame must pass
    candidate: IPv4Address | None = None
    leased: IPv4Address | None = None
    server: IPv4Address | None = None


def _renew(**kw: object) -> bytes:
    args: dict[str, object] = {
        "dst_mac": SERVER_MAC,
        "src_ip": LEASED,
        "dst_ip": SERVER,
        "payload": dhcp(MessageType.REQUEST, ciaddr=LEASED),
    }
    args.update(kw)
    return ip_frame(**args)  # type: ignore[arg-type]


CASES = [
    # -- allowed --------------------------------------------------------------------
    Case("discover_broadcast", ip_frame, None),
    Case("request_select_broadcast", lambda: ip_frame(dhcp(MessageType.REQUEST)), None),
    Case("decline_broadcast", lambda: ip_frame(dhcp(MessageType.DECLINE)), None),
    Case("renew_unicast", _renew, None, leased=LEASED, server=SERVER),
    Case("renew_unicast_server_unknown", _renew, None, leased=LEASED),
    Case(
        "rebind_broadcast_from_lease",
        lambda: ip_frame(dhcp(MessageType.REQUEST, ciaddr=LEASED), src_ip=LEASED),
        None,
        leased=LEASED,
    ),
    Case(
        "release_unicast",
        lambda: _renew(payload=dhcp(MessageType.RELEASE, ciaddr=LEASED)),
        None,
        leased=LEASED,
    ),
    Case("arp_probe", arp_frame, None, candidate=CANDIDATE),
    Case("arp_probe_padded_to_60", lambda: arp_frame(padding=bytes(18)), None, candidate=CANDIDATE),
    Case(
        "arp_announcement_candidate",
        lambda: arp_frame(sender_ip=CANDIDATE, target_ip=CANDIDATE),
        None,
        candidate=CANDIDATE,
    ),
    Case(
        "arp_announcement_leased",
        lambda: arp_frame(sender_ip=LEASED, target_ip=LEASED),
        None,
        leased=LEASED,
    ),
    # -- Ethernet -------------------------------------------------------------------
    Case("wrong_src_mac", lambda: ip_frame(src_mac=OTHER_MAC), "source MAC"),
    Case("truncated_frame", lambda: ip_frame()[:10], "truncated frame"),
    Case("ipv6_ethertype", lambda: ip_frame(ethertype=0x86DD), "IPv6"),
    Case(
        "vlan_tag",
        lambda: BCAST_MAC + OUR_MAC + b"\x81\x00\x00\x05\x08\x00" + ip_frame()[14:],
        "802.1Q",
    ),
    # -- IPv4 -----------------------------------------------------------------------
    Case("truncated_dhcp_frame", lambda: ip_frame()[:200], "truncated frame"),
    Case("oversized", lambda: ip_frame(dhcp() + bytes(1500 - 20 - 8 - 300 + 1)), "oversized frame"),
    Case("ip_options", lambda: ip_frame(ip_options=b"\x01\x01\x01\x00"), "IP options"),
    Case("fragment_more_fragments", lambda: ip_frame(frag=0x2000), "fragment"),
    Case("fragment_offset", lambda: ip_frame(frag=0x0010), "fragment"),
    Case("ip_reserved_flag", lambda: ip_frame(frag=0x8000), "reserved flag"),
    Case("ttl_zero", lambda: ip_frame(ttl=0), "TTL 0"),
    Case("bad_ip_checksum", lambda: ip_frame(ip_csum=0x1234), "IPv4 header checksum"),
    Case("trailing_bytes", lambda: ip_frame(trailing=b"\x00" * 4), "total length"),
    Case("tcp", lambda: ip_frame(proto=6), "TCP"),
    # -- addresses ------------------------------------------------------------------
    Case("spoofed_src_ip", lambda: ip_frame(src_ip=OTHER), "source IP"),
    Case(
        "unicast_from_unspecified",
        lambda: ip_frame(dst_mac=SERVER_MAC, dst_ip=SERVER),
        "from 0.0.0.0",
    ),
    Case("broadcast_ip_unicast_mac", lambda: ip_frame(dst_mac=SERVER_MAC), "unicast MAC"),
    Case(
        "unicast_to_other_server",
        lambda: _renew(dst_ip=OTHER),
        "not the server",
        leased=LEASED,
        server=SERVER,
    ),
    Case(
        "unicast_to_multicast",
        lambda: _renew(dst_ip=IPv4Address("224.0.0.1")),
        "not a unicast server",
        leased=LEASED,
    ),
    Case(
        "unicast_ip_group_mac",
        lambda: _renew(dst_mac=b"\x01\x00\x5e\x00\x00\x01"),
        "group MAC",
        leased=LEASED,
    ),
    # -- UDP ------------------------------------------------------------------------
    Case("src_port_67", lambda: ip_frame(sport=67), "UDP ports 67->67"),
    Case("dst_port_53", lambda: ip_frame(dport=53), "UDP ports 68->53"),
    Case("bad_udp_checksum", lambda: ip_frame(udp_csum=0x1234), "bad UDP checksum"),
    Case("udp_checksum_zero", lambda: ip_frame(udp_csum=0), "UDP checksum missing"),
    # -- DHCP payload -----------------------------------------------------------------
    Case("bootreply_op2", lambda: ip_frame(dhcp(op=2)), "BOOTP op 2"),
    Case("chaddr_not_ours", lambda: ip_frame(dhcp(chaddr=OTHER_MAC)), "chaddr"),
    Case("not_ethernet_htype", lambda: ip_frame(dhcp(htype=6)), "not Ethernet"),
    Case(
        "ciaddr_spoofed",
        lambda: ip_frame(dhcp(MessageType.REQUEST, ciaddr=OTHER)),
        "ciaddr",
        leased=LEASED,
    ),
    Case("server_message_type", lambda: ip_frame(dhcp(MessageType.OFFER)), "OFFER"),
    Case("no_magic_cookie", lambda: ip_frame(bytes(300)), "not a valid DHCP message"),
    # -- ARP ------------------------------------------------------------------------
    Case(
        "arp_probe_for_another_ip",
        lambda: arp_frame(target_ip=OTHER),
        "not our candidate",
        candidate=CANDIDATE,
    ),
    Case("arp_probe_without_candidate", arp_frame, "not our candidate", leased=LEASED),
    Case(
        "arp_reply_spoofing_another_host",
        lambda: arp_frame(op=2, sender_ip=OTHER, target_ip=SERVER, dst_mac=SERVER_MAC),
        "ARP op 2",
        candidate=CANDIDATE,
        leased=LEASED,
    ),
    Case(
        "arp_announcement_of_another_ip",
        lambda: arp_frame(sender_ip=OTHER, target_ip=OTHER),
        "not an announcement of our address",
        candidate=CANDIDATE,
        leased=LEASED,
    ),
    Case(
        "arp_gratuitous_claim_sender_not_target",
        lambda: arp_frame(sender_ip=LEASED, target_ip=SERVER),
        "not an announcement",
        leased=LEASED,
    ),
    Case(
        "arp_sender_mac_not_ours",
        lambda: arp_frame(sender_mac=OTHER_MAC),
        "sender MAC",
        candidate=CANDIDATE,
    ),
    Case(
        "arp_unicast",
        lambda: arp_frame(dst_mac=SERVER_MAC),
        "not broadcast",
        candidate=CANDIDATE,
    ),
    Case(
        "arp_target_mac_set",
        lambda: arp_frame(target_mac=SERVER_MAC),
        "target MAC",
        candidate=CANDIDATE,
    ),
    Case(
        "arp_padding_carries_data",
        lambda: arp_frame(padding=b"secret" + bytes(12)),
        "padding",
        candidate=CANDIDATE,
    ),
    Case("arp_truncated", lambda: arp_frame()[:30], "truncated ARP", candidate=CANDIDATE),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_egress_policy(case: Case) -> None:
    policy = EgressPolicy(OUR_MAC, clock=lambda: 0.0)
    frame = case.build()
    if case.denied is None:
        policy.check(frame, candidate=case.candidate, leased=case.leased, server=case.server)
        return
    with pytest.raises(EgressDenied) as info:
        policy.check(frame, candidate=case.candidate, leased=case.leased, server=case.server)
    assert case.denied in info.value.reason


def test_case_table_is_large_and_names_are_unique() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 40


def test_rate_limit_exceeded_then_refilled() -> None:
    now = [100.0]
    policy = EgressPolicy(OUR_MAC, max_per_second=50, clock=lambda: now[0])
    frame = ip_frame()
    for _ in range(50):
        policy.check(frame, candidate=None, leased=None)
    with pytest.raises(EgressDenied, match="rate limit: more than 50 frames per second"):
        policy.check(frame, candidate=None, leased=None)
    now[0] += 0.1  # five tokens back
    for _ in range(5):
        policy.check(frame, candidate=None, leased=None)
    with pytest.raises(EgressDenied, match="rate limit"):
        policy.check(frame, candidate=None, leased=None)


def test_denied_frames_do_not_use_the_rate_budget() -> None:
    policy = EgressPolicy(OUR_MAC, max_per_second=2, clock=lambda: 0.0)
    for _ in range(10):
        with pytest.raises(EgressDenied, match="source MAC"):
            policy.check(ip_frame(src_mac=OTHER_MAC), candidate=None, leased=None)
    policy.check(ip_frame(), candidate=None, leased=None)
    policy.check(ip_frame(), candidate=None, leased=None)


def test_rate_limiter_ignores_a_clock_going_backwards() -> None:
    limiter = RateLimiter(rate=1)
    limiter.admit(10.0)
    with pytest.raises(EgressDenied):
        limiter.admit(5.0)  # no refill from a step back in time
    limiter.admit(11.0)


def test_permit_logs_a_json_line_and_returns_false(caplog: pytest.LogCaptureFixture) -> None:
    policy = EgressPolicy(OUR_MAC, clock=lambda: 0.0)
    with caplog.at_level(logging.WARNING, logger="privsep"):
        assert policy.permit(ip_frame(sport=67), candidate=None, leased=None) is False
        assert policy.permit(ip_frame(), candidate=None, leased=None) is True
    [record] = [r for r in caplog.records if r.getMessage() == "egress_denied"]
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["reason"] == "UDP ports 67->67, only 68->67 is allowed"
    assert fields["length"] == len(ip_frame())
    json.dumps(fields)  # serializable as one JSON line


@pytest.mark.parametrize("mac", [b"\x01" + bytes(5), bytes(6), b"short"])
def test_policy_refuses_a_bad_own_mac(mac: bytes) -> None:
    with pytest.raises(ValueError, match="our_mac"):
        EgressPolicy(mac)


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=1600),
        st.builds(
            lambda base, pos, junk: base[:pos] + junk + base[pos + len(junk) :],
            st.sampled_from([ip_frame(), arp_frame(), _renew()]),
            st.integers(0, 400),
            st.binary(min_size=1, max_size=8),
        ),
    )
)
def test_arbitrary_bytes_pass_or_raise_egress_denied_only(data: bytes) -> None:
    policy = EgressPolicy(OUR_MAC, clock=lambda: 0.0)
    with contextlib.suppress(EgressDenied):
        policy.check(data, candidate=CANDIDATE, leased=LEASED)
