"""Hostile input at the engine: every bad reply is dropped with a reason, nothing raises.

Each test starts from a known state, delivers one hostile frame and checks that
the engine reported PacketDropped and did not move (or kept its lease).
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest
from engine_helpers import (
    OTHER_MAC,
    OTHER_SERVER_IP,
    SERVER_IP,
    FakeServer,
    Scenario,
    config,
    make_lease,
)

from privsep.services.dhcp._events import (
    LeaseAcquired,
    PacketDropped,
    SuspiciousRoutes,
)
from privsep.services.dhcp._frames import decode_udp_frame
from privsep.services.dhcp._lease import Lease, MalformedLease
from privsep.services.dhcp._options import ClasslessRoute, MessageType
from privsep.services.dhcp._state import State

D = MessageType.DISCOVER
R = MessageType.REQUEST


def selecting(**kw: object) -> tuple[Scenario, object]:
    s = Scenario(config(**kw))
    s.start()
    return s, s.last(D)


def requesting() -> tuple[Scenario, object]:
    s = Scenario()
    s.start()
    s.deliver(s.server.offer(s.last(D)))
    return s, s.last(R)


def assert_dropped(s: Scenario, fragment: str) -> None:
    events = s.events()
    assert len(events) == 1, events
    assert isinstance(events[0], PacketDropped), events
    assert fragment in events[0].reason, events[0].reason


def test_offer_with_wrong_xid_is_dropped() -> None:
    s, discover = selecting()
    s.deliver(s.server.offer(discover, xid=discover.xid ^ 1))  # type: ignore[attr-defined]
    assert_dropped(s, "xid")
    assert s.client.state is State.SELECTING


def test_offer_for_another_chaddr_is_dropped() -> None:
    s, discover = selecting()
    s.deliver(s.server.offer(discover, chaddr=OTHER_MAC))
    assert_dropped(s, "chaddr")


def test_offer_with_wrong_htype_is_dropped() -> None:
    s, discover = selecting()
    s.deliver(s.server.offer(discover, htype=6))
    assert_dropped(s, "chaddr")


def test_bootrequest_op1_is_dropped() -> None:
    s, discover = selecting()
    s.deliver(s.server.offer(discover, op=1))
    assert_dropped(s, "BOOTREPLY")


@pytest.mark.parametrize(("src", "dst"), [(68, 67), (67, 67), (1067, 68), (67, 1068)])
def test_wrong_udp_ports_are_dropped(src: int, dst: int) -> None:
    s, discover = selecting()
    s.deliver(s.server.offer(discover, src_port=src, dst_port=dst))
    assert_dropped(s, "UDP ports")


def test_frame_for_another_mac_is_dropped() -> None:
    s, discover = selecting()
    s.deliver(s.server.offer(discover, dst_mac=OTHER_MAC))
    assert_dropped(s, "not addressed to us")


def test_bad_udp_checksum_is_dropped() -> None:
    s, discover = selecting()
    frame = bytearray(s.server.offer(discover))
    frame[-1] ^= 0xFF  # last payload byte: the UDP checksum no longer matches
    s.deliver(bytes(frame))
    assert_dropped(s, "UDP checksum")


def test_ip_fragment_is_dropped() -> None:
    s, discover = selecting()
    frame = bytearray(s.server.offer(discover))
    frame[14 + 6] |= 0x20  # more-fragments flag
    # Fix the IPv4 header checksum so the fragment check itself is what rejects it.
    from privsep.services.dhcp._frames import internet_checksum

    frame[24:26] = b"\x00\x00"
    frame[24:26] = internet_checksum(bytes(frame[14:34])).to_bytes(2, "big")
    s.deliver(bytes(frame))
    assert_dropped(s, "fragment")


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", "runt"),
        (b"\x00" * 13, "runt"),
        (b"\xff" * 12 + b"\x86\xdd" + b"\x00" * 40, "ethertype"),
        (b"\xff" * 12 + b"\x08\x00" + b"\x45", "IPv4 header"),
    ],
)
def test_garbage_frames_are_dropped(frame: bytes, reason: str) -> None:
    s, _ = selecting()
    s.deliver(frame)
    assert_dropped(s, reason)


def test_offer_without_server_id_is_dropped() -> None:
    s, discover = selecting()
    s.deliver(s.server.offer(discover, server_id=False))
    assert_dropped(s, "OFFER without server identifier")


def test_message_without_type_is_dropped() -> None:
    s, discover = selecting()
    s.deliver(s.server.offer(discover, options={53: None}))
    assert_dropped(s, "no DHCP message type")


@pytest.mark.parametrize("kind", [MessageType.REQUEST, MessageType.INFORM, MessageType.RELEASE])
def test_unexpected_message_types_are_dropped(kind: MessageType) -> None:
    s, discover = selecting()
    s.deliver(s.server.reply(discover, kind))  # type: ignore[arg-type]
    assert_dropped(s, f"unexpected {kind.name}")


@pytest.mark.parametrize(
    "bad",
    # 169.254.x.x and 240/4: the actuator would refuse them, so the engine passes them
    # over (and can take another server's offer) instead of failing to apply them.
    ["0.0.0.0", "127.0.0.1", "224.0.0.1", "255.255.255.255", "0.1.2.3", "169.254.1.1", "240.0.0.1"],
)
def test_offer_of_an_unusable_address_is_dropped(bad: str) -> None:
    s, discover = selecting()
    s.server.address = IPv4Address(bad)
    s.deliver(s.server.offer(discover))
    assert_dropped(s, "unusable address")


@pytest.mark.parametrize("bad", ["0.0.0.0", "127.0.0.1", "224.0.0.1"])
def test_ack_with_unusable_yiaddr_is_dropped(bad: str) -> None:
    s, request = requesting()
    s.server.address = IPv4Address(bad)
    s.deliver(s.server.ack(request))
    assert_dropped(s, "unusable address")
    assert s.client.state is State.REQUESTING


def test_ack_for_another_address_than_offered_is_dropped() -> None:
    s, request = requesting()
    s.server.address = IPv4Address("192.0.2.99")
    s.deliver(s.server.ack(request))
    assert_dropped(s, "we asked for 192.0.2.10")


def test_ack_for_the_subnet_broadcast_address_is_dropped() -> None:
    s = Scenario()
    s.server.address = IPv4Address("192.0.2.255")
    s.start()
    s.deliver(s.server.offer(s.last(D)))
    s.deliver(s.server.ack(s.last(R)))
    assert_dropped(s, "broadcast address")


def test_offer_with_lease_time_zero_is_dropped() -> None:
    s, discover = selecting()
    s.deliver(s.server.offer(discover, options={51: 0}))
    assert_dropped(s, "lease time 0")


def test_ack_with_lease_time_zero_is_dropped() -> None:
    s = Scenario()
    s.start()
    s.deliver(s.server.offer(s.last(D), options={51: None}))
    s.deliver(s.server.ack(s.last(R), options={51: 0}))
    assert_dropped(s, "lease time 0")


def test_ack_without_any_lease_time_is_dropped() -> None:
    s = Scenario()
    s.start()
    s.deliver(s.server.offer(s.last(D), options={51: None}))
    s.deliver(s.server.ack(s.last(R), options={51: None}))
    assert_dropped(s, "without lease time")


def test_t1_above_t2_above_lease_is_sanitised() -> None:
    s = Scenario()
    lease = s.bind(ack_options={51: 100, 58: 500, 59: 400})
    assert (lease.t1, lease.t2) == (50.0, 87.5)


def test_non_contiguous_mask_is_dropped() -> None:
    s, request = requesting()
    s.deliver(s.server.ack(request, options={1: IPv4Address("255.0.255.0")}))
    assert_dropped(s, "subnet mask")


def test_zero_mask_is_dropped() -> None:
    s, request = requesting()
    s.deliver(s.server.ack(request, options={1: IPv4Address("0.0.0.0")}))
    assert_dropped(s, "subnet mask")


def test_nak_from_another_server_while_requesting_is_ignored() -> None:
    s, request = requesting()
    rogue = FakeServer(ip=OTHER_SERVER_IP, mac=OTHER_MAC)
    s.deliver(rogue.nak(request))
    assert_dropped(s, "NAK from 192.0.2.2, we talk to 192.0.2.1")
    assert s.client.state is State.REQUESTING


def test_ack_from_another_server_while_requesting_is_ignored() -> None:
    s, request = requesting()
    rogue = FakeServer(ip=OTHER_SERVER_IP, mac=OTHER_MAC)
    s.deliver(rogue.ack(request))
    assert_dropped(s, "ACK from 192.0.2.2")


def test_nak_without_server_id_is_dropped() -> None:
    s, request = requesting()
    s.deliver(s.server.nak(request, server_id=False))
    assert_dropped(s, "NAK without server identifier")


def test_ack_without_server_id_is_attributed_only_when_known() -> None:
    s, request = requesting()
    s.deliver(s.server.ack(request, server_id=False))
    assert s.client.lease is not None and s.client.lease.server_id == SERVER_IP
    s = Scenario(saved_lease=make_lease(acquired_at=1000.0))
    s.start()
    s.deliver(s.server.ack(s.last(R), server_id=False))
    assert_dropped(s, "ACK without server identifier")


def test_nak_or_ack_while_bound_is_dropped() -> None:
    s = Scenario()
    s.bind()
    s.events()
    lease = s.client.lease
    stale = s.client._xid  # None: no exchange while BOUND
    assert stale is None
    from privsep.services.dhcp._message import Message

    s.deliver(s.server.nak(Message(op=1, xid=0x1000, chaddr=s.config.mac)))
    assert_dropped(s, "xid")
    assert s.client.lease == lease and s.client.state is State.BOUND


def test_offer_in_requesting_is_dropped() -> None:
    s, request = requesting()
    s.deliver(s.server.offer(request))  # type: ignore[arg-type]
    assert_dropped(s, "OFFER in state REQUESTING")


def test_forcerenew_without_authentication_is_ignored() -> None:
    s = Scenario()
    s.bind()
    s.events()
    from privsep.services.dhcp._message import Message

    s.deliver(s.server.reply(Message(op=1, xid=77, chaddr=s.config.mac), MessageType.FORCERENEW))
    assert_dropped(s, "FORCERENEW")
    assert s.client.state is State.BOUND


def test_malformed_option_is_dropped_not_raised() -> None:
    s, discover = selecting()
    s.deliver(s.server.offer(discover, wire_options=b"\x79\x05\x21\x0a\x00\x00\x00"))
    assert_dropped(s, "option 121")


def test_tunnelvision_routes_are_flagged_and_removed() -> None:
    routes = (
        ClasslessRoute(IPv4Network("0.0.0.0/1"), SERVER_IP),
        ClasslessRoute(IPv4Network("128.0.0.0/1"), SERVER_IP),
        ClasslessRoute(IPv4Network("0.0.0.0/0"), SERVER_IP),
        ClasslessRoute(IPv4Network("10.0.0.0/8"), IPv4Address(0)),  # on-link: kept
        ClasslessRoute(IPv4Network("10.9.0.0/16"), IPv4Address("127.0.0.1")),  # useless
    )
    s = Scenario()
    s.start()
    s.deliver(s.server.offer(s.last(D)))
    s.deliver(s.server.ack(s.last(R), options={121: routes}))
    suspicious, acquired = s.events()
    assert suspicious == SuspiciousRoutes(routes[:2], kept=False)
    assert isinstance(acquired, LeaseAcquired)
    assert acquired.lease.classless_routes == (routes[2], routes[3])
    assert acquired.lease.routers == ()  # RFC 3442: option 3 ignored with 121


def test_broad_routes_kept_when_allowed() -> None:
    routes = (ClasslessRoute(IPv4Network("0.0.0.0/1"), SERVER_IP),)
    s = Scenario(config(allow_broad_routes=True))
    lease = s.bind(ack_options={121: routes})
    assert lease.classless_routes == routes
    assert SuspiciousRoutes(routes, kept=True) in s.events()


def test_ms_classless_routes_249_used_only_without_121() -> None:
    ms = (ClasslessRoute(IPv4Network("10.0.0.0/8"), SERVER_IP),)
    std = (ClasslessRoute(IPv4Network("172.16.0.0/12"), SERVER_IP),)
    assert Scenario().bind(ack_options={249: ms}).classless_routes == ms
    assert Scenario().bind(ack_options={249: ms, 121: std}).classless_routes == std


def test_unusable_option3_routers_are_dropped() -> None:
    routers = (IPv4Address("127.0.0.1"), IPv4Address(0), IPv4Address("224.0.0.9"), SERVER_IP)
    assert Scenario().bind(ack_options={3: routers}).routers == (SERVER_IP,)


HOSTILE = ["$(reboot)", "`reboot`", "a'b\"c", "line\nbreak", "() { :; }; echo pwned", "x;rm -rf /"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_stay_inert_data_in_the_lease(text: str) -> None:
    lease = Scenario().bind(ack_options={12: text, 15: text, 56: text})
    assert lease.hostname == text and lease.domain == text
    assert (56, text.encode()) in lease.extra
    assert Lease.from_bytes(lease.to_bytes()) == lease


def test_lease_file_round_trip_of_hostile_values() -> None:
    lease = make_lease(
        hostname=HOSTILE[4],
        domain="\u202e\\evil\r\n",
        search=tuple(HOSTILE),
        extra=((43, b"\x00\xff$(x)"), (224, b"")),
    )
    data = lease.to_bytes()
    assert data.count(b"\n") == 1 and data.isascii()
    assert Lease.from_bytes(data) == lease


def test_overlong_hostname_is_left_out_not_fatal() -> None:
    lease = Scenario().bind(ack_options={12: "h" * 2000})
    assert lease.hostname is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.replace(b'"version": 1', b'"version": 2'),
        lambda d: d.replace(b'"version": 1', b'"version": true'),
        lambda d: d.replace(b'"prefix_len": 24', b'"prefix_len": 33'),
        lambda d: d.replace(b'"prefix_len": 24', b'"prefix_len": "24"'),
        lambda d: d.replace(b'"prefix_len": 24', b'"prefix_len": 24.0'),
        lambda d: d.replace(b'"lease_time": 3600', b'"lease_time": 0'),
        lambda d: d.replace(b'"lease_time": 3600', b'"lease_time": 1e999'),
        lambda d: d.replace(b'"t1": 1800.0', b'"t1": NaN'),
        lambda d: d.replace(b'"t1": 1800.0', b'"t1": 3500.0'),
        lambda d: d.replace(b'"address": "192.0.2.10"', b'"address": "192.0.2.010"'),
        lambda d: d.replace(b'"address": "192.0.2.10"', b'"address": "127.0.0.1"'),
        lambda d: d.replace(b'"address": "192.0.2.10"', b'"address": 3221225994'),
        lambda d: d.replace(b'"server_mac": "02:00:00:00:aa:01"', b'"server_mac": "02:00"'),
        lambda d: d.replace(
            b'"server_mac": "02:00:00:00:aa:01"', b'"server_mac": "02:00:00:00:AA:01"'
        ),
        lambda d: d.replace(b'"mtu": null', b'"mtu": 67'),
        lambda d: d.replace(b'"routers": ["192.0.2.1"]', b'"routers": "192.0.2.1"'),
        lambda d: d.replace(b'"dns": [', b'"dns": [1, '),
        lambda d: d.replace(b'"extra": []', b'"extra": [[300, "00"]]'),
        lambda d: d.replace(b'"extra": []', b'"extra": [[43, "0"]]'),
        lambda d: d.replace(b'"extra": []', b'"extra": [[43, "ZZ"]]'),
        lambda d: d.replace(b'"extra": []', b'"extra": [[44, "00"], [43, "00"]]'),
        lambda d: d.replace(b'"extra": []', b'"extra": [43]'),
        lambda d: d.replace(b'"classless_routes": []', b'"classless_routes": [1]'),
        lambda d: d.replace(
            b'"classless_routes": []',
            b'"classless_routes": [{"destination": "10.0.0.1/8", "router": "0.0.0.0"}]',
        ),
        lambda d: d.replace(
            b'"classless_routes": []',
            b'"classless_routes": [{"destination": "10.0.0.0/8", "router": "0.0.0.0", "x": 1}]',
        ),
        lambda d: d.replace(b'"search": []', b'"search": [""]'),
        lambda d: d.replace(b'"search": []', b'"search": ["a\\u0000b"]'),
        lambda d: d.replace(b'"hostname": null', b'"hostname": 5'),
        lambda d: d.replace(b"{", b'{"unknown": 1, ', 1),
        lambda d: d.replace(b'"broadcast": null, ', b""),
        lambda d: b"[" + d + b"]",
        lambda d: d[:-5],
        lambda d: b"\xff" + d,
        lambda d: d + b" " * (300 * 1024),
    ],
)
def test_strict_lease_file_rejections(mutate: object) -> None:
    data = make_lease().to_bytes()
    bad = mutate(data)  # type: ignore[operator]
    assert bad != data
    with pytest.raises(MalformedLease):
        Lease.from_bytes(bad)


def test_dropped_frames_never_change_timers() -> None:
    s, discover = selecting()
    before = s.client.get_timer()
    for frame in (b"", s.server.offer(discover, op=1), s.server.ack(discover)):
        s.deliver(frame)
    assert s.client.get_timer() == before
    assert all(isinstance(e, PacketDropped) for e in s.events())


def test_ports_are_checked_on_the_decoded_frame() -> None:
    s, discover = selecting()
    frame = s.server.offer(discover)
    udp = decode_udp_frame(frame)
    assert (udp.src_port, udp.dst_port) == (67, 68)
    assert replace(udp, src_port=68) != udp


@pytest.mark.parametrize(
    "frame",
    [
        b"\xff" * 12 + b"\x08\x00" + b"\x45" + b"\x00" * 8 + b"\x11",  # too short for UDP
        b"\xff" * 12 + b"\x08\x00" + b"\x4f" + b"\x00" * 8 + b"\x11" + b"\x00" * 30,  # IHL 60
        b"\xff" * 12 + b"\x08\x06" + b"\x00" * 28,  # ARP
        b"\xff" * 12 + b"\x08\x00" + b"\x45" + b"\x00" * 8 + b"\x06" + b"\x00" * 30,  # TCP
    ],
)
def test_checksum_not_ready_flag_on_odd_frames_still_drops_cleanly(frame: bytes) -> None:
    s, _ = selecting()
    s.deliver(frame, csum_partial=True)
    assert all(isinstance(e, PacketDropped) for e in s.events())
