"""The network process's egress check: exactly our DHCP requests and RFC 5227 ARP pass.

Which addresses are ours comes from what `dhcp-network` saw on the wire (`OfferLedger`),
not from the engine: the `candidate`/`leased`/`server` it passes only narrow that.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
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
from privsep.services.dhcp._ingress import LEDGER_CAPACITY, OfferLedger
from privsep.services.dhcp._message import Message, encode_message
from privsep.services.dhcp._options import MessageType
from privsep.services.dhcp._proc_network import Wire

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
OTHER_SERVER = IPv4Address("192.168.77.2")
RELAY = IPv4Address("10.0.0.1")


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


def reply(
    yiaddr: IPv4Address = CANDIDATE,
    *,
    server: IPv4Address | None = SERVER,
    op: int = 2,
    chaddr: bytes = OUR_MAC,
    htype: int = 1,
    options: tuple[tuple[int, bytes], ...] | None = None,
    **frame: object,
) -> bytes:
    """A server's OFFER for us (ports 67 -> 68, from `server`), as `dhcp-network` receives it."""
    if options is None:
        ident = () if server is None else ((54, server.packed),)
        options = ((53, bytes([MessageType.OFFER])), *ident)
    payload = encode_message(
        Message(op=op, xid=0x1234, chaddr=chaddr, htype=htype, yiaddr=yiaddr, options=options)
    )
    args: dict[str, object] = {
        "src_mac": SERVER_MAC,
        "dst_mac": BCAST_MAC,
        "src_ip": server or RELAY,
        "dst_ip": BCAST,
        "sport": 67,
        "dport": 68,
    }
    args.update(frame)
    return ip_frame(payload, **args)  # type: ignore[arg-type]


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
    # (yiaddr, server) of the OFFERs/ACKs seen on the wire before the frame is sent.
    seen: tuple[tuple[IPv4Address, IPv4Address], ...] = ((CANDIDATE, SERVER), (LEASED, SERVER))


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
        lambda: _renew(dst_ip=OTHER_SERVER),
        "not the server",
        leased=LEASED,
        server=SERVER,
        seen=((LEASED, SERVER), (LEASED, OTHER_SERVER)),
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
        "arp_probe_for_another_offered_ip",
        lambda: arp_frame(target_ip=OTHER),
        "not our candidate",
        candidate=CANDIDATE,
        seen=((CANDIDATE, SERVER), (OTHER, SERVER)),
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
        "arp_announcement_of_another_offered_ip",
        lambda: arp_frame(sender_ip=OTHER, target_ip=OTHER),
        "not an announcement of our address",
        candidate=CANDIDATE,
        leased=LEASED,
        seen=((CANDIDATE, SERVER), (LEASED, SERVER), (OTHER, SERVER)),
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
    # -- the wire, not the engine, says which addresses are ours ----------------------
    Case("discover_nothing_seen", ip_frame, None, seen=()),
    Case(
        "init_reboot_request_nothing_seen",  # from 0.0.0.0, ciaddr 0: passes after a restart
        lambda: ip_frame(dhcp(MessageType.REQUEST)),
        None,
        leased=LEASED,
        seen=(),
    ),
    Case(
        "arp_probe_never_offered_though_named_candidate",
        lambda: arp_frame(target_ip=OTHER),
        "ARP probe for 192.168.77.77, an address no server offered us",
        candidate=OTHER,
    ),
    Case(
        "arp_probe_nothing_seen",
        arp_frame,
        "no server offered us",
        candidate=CANDIDATE,
        seen=(),
    ),
    Case(
        "arp_announcement_never_offered_though_named_leased",
        lambda: arp_frame(sender_ip=OTHER, target_ip=OTHER),
        "ARP announcement of 192.168.77.77, an address no server offered us",
        candidate=OTHER,
        leased=OTHER,
    ),
    Case(
        "arp_announcement_after_restart",  # no ACK seen since: nothing to announce
        lambda: arp_frame(sender_ip=LEASED, target_ip=LEASED),
        "no server offered us",
        leased=LEASED,
        seen=(),
    ),
    Case(
        "unicast_from_an_address_never_offered_though_named_leased",
        lambda: _renew(src_ip=OTHER, payload=dhcp(MessageType.REQUEST, ciaddr=OTHER)),
        "unicast from 192.168.77.77, an address no server offered us",
        leased=OTHER,
        server=SERVER,
    ),
    Case(
        "rebind_after_restart",  # broadcast from the lease, nothing seen: how it recovers
        lambda: ip_frame(dhcp(MessageType.REQUEST, ciaddr=LEASED), src_ip=LEASED),
        None,
        leased=LEASED,
        seen=(),
    ),
    Case(
        "source_offered_but_not_the_lease",
        lambda: ip_frame(dhcp(MessageType.REQUEST, ciaddr=CANDIDATE), src_ip=CANDIDATE),
        "source IP 192.168.77.150 is neither 0.0.0.0 nor the leased address",
        leased=LEASED,
    ),
    Case(
        "ciaddr_offered_but_not_the_lease",
        lambda: ip_frame(dhcp(MessageType.REQUEST, ciaddr=CANDIDATE)),
        "ciaddr 192.168.77.150 is neither 0.0.0.0 nor the leased address",
        leased=LEASED,
    ),
    Case(
        "renew_after_restart",  # unicast from the lease before any ACK was seen
        _renew,
        "unicast from 192.168.77.148, an address no server offered us",
        leased=LEASED,
        server=SERVER,
        seen=(),
    ),
    Case(
        "ciaddr_not_the_lease_nothing_seen",
        lambda: ip_frame(dhcp(MessageType.REQUEST, ciaddr=OTHER)),
        "ciaddr 192.168.77.77 is neither 0.0.0.0 nor the leased address",
        leased=LEASED,
        seen=(),
    ),
    Case(
        "unicast_to_a_server_never_seen",
        _renew,
        "destination IP 192.168.77.1 is not a server seen on the wire",
        leased=LEASED,
        server=SERVER,
        seen=((LEASED, OTHER_SERVER),),
    ),
    Case(
        "unicast_to_a_host_the_engine_names_as_server",
        lambda: _renew(dst_ip=OTHER),
        "not a server seen",
        leased=LEASED,
        server=OTHER,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_egress_policy(case: Case) -> None:
    policy = EgressPolicy(OUR_MAC, clock=lambda: 0.0)
    for yiaddr, server in case.seen:
        assert policy.ledger.observe(reply(yiaddr, server=server))
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
    policy.ledger.observe(reply(CANDIDATE))
    policy.ledger.observe(reply(LEASED))
    with contextlib.suppress(EgressDenied):
        policy.check(data, candidate=CANDIDATE, leased=LEASED)


# -- what the network process learns from the wire (OfferLedger) --------------------------


def test_a_probe_passes_only_for_an_address_a_server_offered() -> None:
    policy = EgressPolicy(OUR_MAC, clock=lambda: 0.0)
    with pytest.raises(EgressDenied, match="no server offered us"):
        policy.check(arp_frame(target_ip=CANDIDATE), candidate=CANDIDATE, leased=None)
    assert policy.ledger.observe(reply(CANDIDATE))
    policy.check(arp_frame(target_ip=CANDIDATE), candidate=CANDIDATE, leased=None)
    with pytest.raises(EgressDenied, match=r"ARP probe for 192\.168\.77\.77, an address no server"):
        policy.check(arp_frame(target_ip=OTHER), candidate=OTHER, leased=None)


def test_a_relayed_reply_makes_its_server_identifier_a_server() -> None:
    policy = EgressPolicy(OUR_MAC, clock=lambda: 0.0)
    assert policy.ledger.observe(reply(LEASED, server=SERVER, src_ip=RELAY))
    assert policy.ledger.offers == (LEASED,)
    assert policy.ledger.servers == (RELAY, SERVER)
    policy.check(_renew(), candidate=None, leased=LEASED, server=SERVER)


def test_a_reply_without_server_identifier_makes_its_ip_source_a_server() -> None:
    ledger = OfferLedger(OUR_MAC)
    assert ledger.observe(reply(LEASED, server=None, src_ip=SERVER))
    assert (ledger.offers, ledger.servers) == ((LEASED,), (SERVER,))


def test_a_unicast_reply_to_our_address_counts() -> None:
    ledger = OfferLedger(OUR_MAC)
    assert ledger.observe(reply(LEASED, dst_mac=OUR_MAC, dst_ip=LEASED))
    assert ledger.offered(LEASED)
    assert ledger.is_server(SERVER)
    assert not ledger.offered(SERVER)
    assert not ledger.is_server(LEASED)


def _raw_reply(options: bytes) -> bytes:
    """A reply whose options area is exactly `options` (no padding, maybe malformed)."""
    header = encode_message(Message(op=2, xid=1, chaddr=OUR_MAC, yiaddr=CANDIDATE))[:240]
    return ip_frame(header + options, src_mac=SERVER_MAC, src_ip=SERVER, sport=67, dport=68)


def _patched(frame: bytes, offset: int, value: bytes) -> bytes:
    return frame[:offset] + value + frame[offset + len(value) :]


HOSTILE_INGRESS = {
    "empty": b"",
    "one_byte": b"\x02",
    "zeros_2000": bytes(2000),
    "ones_2000": b"\xff" * 2000,
    "truncated_to_the_cookie": reply()[:281],
    "truncated_inside_options": reply()[:300],
    "ip_total_length_beyond_frame": _patched(reply(), 16, struct.pack("!H", 2000)),
    "ip_total_length_short_of_bootp": _patched(reply(), 16, struct.pack("!H", 100)),
    "udp_length_not_ip_payload": _patched(reply(), 38, struct.pack("!H", 300)),
    "bootrequest_op1": reply(op=1),
    "chaddr_not_ours": reply(chaddr=OTHER_MAC),
    "hlen_7": reply(chaddr=OUR_MAC + b"\x00"),
    "htype_not_ethernet": reply(htype=6),
    "to_server_port_67": reply(dport=67),
    "from_port_68": reply(sport=68),
    "ip_options": reply(ip_options=b"\x01\x01\x01\x00"),
    "fragment_more_fragments": reply(frag=0x2000),
    "fragment_offset": reply(frag=0x0010),
    "tcp": reply(proto=6),
    "bad_ip_checksum": reply(ip_csum=0x1234),
    "ipv6_ethertype": reply(ethertype=0x86DD),
    "vlan_tag": reply()[:12] + b"\x81\x00\x00\x05" + reply()[12:],
    "arp": arp_frame(op=2, sender_ip=CANDIDATE, target_ip=CANDIDATE),
    "no_magic_cookie": _patched(reply(), 14 + 20 + 8 + 236, b"\x00\x00\x00\x00"),
    "nak_yiaddr_zero": reply(ANY),
    "yiaddr_broadcast": reply(BCAST),
    "yiaddr_multicast": reply(IPv4Address("224.0.0.1")),
    "yiaddr_loopback": reply(IPv4Address("127.0.0.1")),
    "yiaddr_this_network": reply(IPv4Address("0.1.2.3")),
    "yiaddr_class_e": reply(IPv4Address("240.0.0.1")),
    "server_id_3_bytes": _raw_reply(b"\x36\x03\xc0\xa8\x4d\xff"),
    "server_id_repeated": _raw_reply(b"\x36\x04" + SERVER.packed + b"\x36\x04" + OTHER.packed),
    "option_runs_past_the_end": _raw_reply(b"\x35\x01\x02\x36\x08" + SERVER.packed),
    "option_without_length_byte": _raw_reply(b"\x35\x01\x02\x36"),
}


@pytest.mark.parametrize("frame", HOSTILE_INGRESS.values(), ids=HOSTILE_INGRESS.keys())
def test_hostile_ingress_is_not_remembered(frame: bytes) -> None:
    ledger = OfferLedger(OUR_MAC)
    assert ledger.observe(frame) is False
    assert (ledger.offers, ledger.servers) == ((), ())


def test_hostile_ingress_table_covers_the_reply_builder() -> None:
    # The same builder with nothing wrong is remembered, so each case fails for its reason.
    assert OfferLedger(OUR_MAC).observe(reply())
    assert OfferLedger(OUR_MAC).observe(_raw_reply(b"\x35\x01\x02\x36\x04" + SERVER.packed))
    padded = _raw_reply(b"\x00\x00\x36\x04" + OTHER_SERVER.packed + b"\xff\x36")  # after End
    ledger = OfferLedger(OUR_MAC)
    assert ledger.observe(padded)
    assert ledger.servers == (SERVER, OTHER_SERVER)
    assert OfferLedger(OUR_MAC).observe(reply() + bytes(100))  # Ethernet trailer: ignored


def test_a_reply_truncated_anywhere_is_not_remembered() -> None:
    frame = reply()
    ledger = OfferLedger(OUR_MAC)
    for end in range(len(frame)):
        assert ledger.observe(frame[:end]) is False, end
    assert ledger.offers == ()


def test_the_ledger_stays_bounded_under_10000_distinct_offers() -> None:
    ledger = OfferLedger(OUR_MAC)
    base = int(IPv4Address("10.0.0.0"))
    offers = [IPv4Address(base + n) for n in range(1, 10_001)]
    servers = [IPv4Address(base + 0x10000 + n) for n in range(1, 10_001)]
    for n, (yiaddr, server) in enumerate(zip(offers, servers, strict=True)):
        assert ledger.observe(reply(yiaddr, server=server))
        if n % 1000 == 0:
            assert len(ledger.offers) <= LEDGER_CAPACITY
            assert len(ledger.servers) <= LEDGER_CAPACITY
    assert ledger.offers == tuple(offers[-LEDGER_CAPACITY:])  # the newest, oldest first
    assert ledger.servers == tuple(servers[-LEDGER_CAPACITY:])
    assert not ledger.offered(offers[0])


def test_seeing_an_offer_again_saves_it_from_eviction() -> None:
    ledger = OfferLedger(OUR_MAC, capacity=3)
    first, second, third, fourth = (IPv4Address(f"10.0.0.{n}") for n in range(1, 5))
    for address in (first, second, third, first, fourth):  # the renewal ACK, then another
        ledger.observe(reply(address))
    assert ledger.offers == (third, first, fourth)


def test_policy_and_ledger_refuse_bad_arguments() -> None:
    with pytest.raises(ValueError, match="another MAC"):
        EgressPolicy(OUR_MAC, ledger=OfferLedger(OTHER_MAC))
    with pytest.raises(ValueError, match="our_mac"):
        OfferLedger(b"short")
    with pytest.raises(ValueError, match="capacity"):
        OfferLedger(OUR_MAC, capacity=0)


_valid_reply = st.builds(
    lambda yiaddr, server, src: reply(yiaddr, server=server, src_ip=src),
    st.integers(0, 2**32 - 1).map(IPv4Address),
    st.one_of(st.none(), st.integers(0, 2**32 - 1).map(IPv4Address)),
    st.integers(0, 2**32 - 1).map(IPv4Address),
)
_ingress = st.one_of(
    st.binary(max_size=2100),
    _valid_reply,
    st.builds(
        lambda base, pos, junk: base[:pos] + junk + base[pos + len(junk) :],
        _valid_reply,
        st.integers(0, 400),
        st.binary(min_size=1, max_size=8),
    ),
    st.builds(lambda base, end: base[:end], _valid_reply, st.integers(0, 400)),
)


@settings(max_examples=300, deadline=None)
@given(frames=st.lists(_ingress, max_size=30))
def test_arbitrary_ingress_never_raises_and_never_exceeds_the_bound(frames: list[bytes]) -> None:
    ledger = OfferLedger(OUR_MAC, capacity=4)
    for frame in frames:
        remembered = ledger.observe(frame)
        assert isinstance(remembered, bool)
        assert len(ledger.offers) <= 4
        assert len(ledger.servers) <= 4
    assert all(ledger.offered(a) for a in ledger.offers)


def test_wire_feeds_the_ledger_before_queueing_the_frame_for_the_engine() -> None:
    outside, inside = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with outside, inside:
        inside.setblocking(False)
        outside.settimeout(1)
        wire = Wire(inside, EgressPolicy(OUR_MAC, clock=lambda: 0.0))
        probe = arp_frame(target_ip=CANDIDATE)
        assert wire.send(probe, int(CANDIDATE), 0, 0) is False  # nothing offered yet

        offer = reply(CANDIDATE)
        outside.send(offer)
        wire._readable()
        assert list(wire.queue) == [(offer, False)]
        assert wire.policy.ledger.offers == (CANDIDATE,)
        assert wire.send(probe, int(CANDIDATE), 0, 0) is True
        assert outside.recv(2048) == probe
        assert wire.send(arp_frame(target_ip=OTHER), int(OTHER), 0, 0) is False
