"""Scenario tests of the sans-IO DHCP client on an explicit clock, with exact timers."""

from __future__ import annotations

import itertools
import random
from ipaddress import IPv4Address, IPv4Network

import pytest
from engine_helpers import (
    ADDRESS,
    CLIENT_MAC,
    OTHER_MAC,
    OTHER_SERVER_IP,
    SERVER_IP,
    SERVER_MAC,
    START,
    ArpOut,
    FakeServer,
    FixedRng,
    Scenario,
    arp_probe_from,
    arp_reply_from,
    config,
    make_lease,
)

from privsep.services.dhcp._config import DEFAULT_REQUEST_OPTIONS, ClientConfig, InvalidConfig
from privsep.services.dhcp._events import (
    AddressConflict,
    Ipv6OnlyPreferred,
    LeaseAcquired,
    LeaseExpired,
    LeaseFailed,
    LeaseLost,
    LeaseReleased,
    LeaseRenewed,
    PacketDropped,
    StateChanged,
)
from privsep.services.dhcp._frames import ARP_REQUEST, BROADCAST_MAC
from privsep.services.dhcp._options import MessageType
from privsep.services.dhcp._state import EngineStateError, State

D = MessageType.DISCOVER
R = MessageType.REQUEST
BCAST = IPv4Address("255.255.255.255")
ANY = IPv4Address(0)


# -- DORA -----------------------------------------------------------------------------


def test_dora_sends_rfc_messages_and_binds_with_exact_timers() -> None:
    s = Scenario()
    s.start()
    assert s.client.state is State.SELECTING
    [out] = s.sent_dhcp()
    discover = out.message
    assert out.kind is D
    assert (out.frame.src_ip, out.frame.dst_ip) == (ANY, BCAST)
    assert (out.frame.src_port, out.frame.dst_port) == (68, 67)
    assert (out.frame.src_mac, out.frame.dst_mac) == (CLIENT_MAC, BROADCAST_MAC)
    assert discover.xid == 0x1000 and discover.chaddr == CLIENT_MAC and discover.secs == 0
    assert discover.get(55) == DEFAULT_REQUEST_OPTIONS
    assert discover.get(57) == 1472
    # RFC 4361: type 255, IAID (last 4 MAC bytes), DUID-LL (type 3, hw type 1, MAC).
    assert discover.get(61) == b"\xff" + CLIENT_MAC[2:] + b"\x00\x03\x00\x01" + CLIENT_MAC
    assert discover.option(50) is None and discover.option(80) is None
    assert s.client.get_timer() == START + 4.0

    s.deliver(s.server.offer(discover), at=START + 1.5)
    assert s.client.state is State.REQUESTING
    request = s.last(R)
    assert request.xid == discover.xid  # RFC 2131 §4.4.1: the offer's xid
    assert request.secs == 1
    assert request.get(50) == ADDRESS and request.get(54) == SERVER_IP
    assert request.ciaddr == ANY
    assert s.client.get_timer() == START + 1.5 + 4.0

    s.deliver(s.server.ack(request), at=START + 2.0)
    assert s.client.state is State.BOUND
    [acquired] = s.events()
    assert isinstance(acquired, LeaseAcquired)
    lease = acquired.lease
    assert lease.address == ADDRESS and lease.prefix_len == 24
    assert lease.server_id == SERVER_IP and lease.server_mac == SERVER_MAC
    assert lease.routers == (SERVER_IP,)
    # The lease starts when the first REQUEST left (RFC 2131 §4.4.1).
    assert lease.acquired_at == START + 1.5
    assert (lease.t1_at, lease.t2_at, lease.expires_at) == (
        START + 1.5 + 1800,
        START + 1.5 + 3150,
        START + 1.5 + 3600,
    )
    assert s.client.get_timer() == START + 1.5 + 1800
    assert s.client.lease == lease


def test_state_changes_follow_the_table() -> None:
    s = Scenario()
    s.bind()
    changes = [(e.old, e.new) for e in s.events(states=True) if isinstance(e, StateChanged)]
    assert changes == [
        (State.STOPPED, State.INIT),
        (State.INIT, State.SELECTING),
        (State.SELECTING, State.REQUESTING),
        (State.REQUESTING, State.BOUND),
    ]


def test_discover_retransmits_at_4_8_16_32_64_64_with_jitter() -> None:
    s = Scenario(rng=FixedRng(fraction=1.0))  # jitter always +1 s
    s.start()
    first = s.last(D)
    times = [s.now]
    for _ in range(7):
        s.fire()
        message = s.last(D)
        assert message.xid == first.xid  # same exchange
        assert message.secs == int(s.now - START)
        times.append(s.now)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == [5.0, 9.0, 17.0, 33.0, 65.0, 65.0, 65.0]


def test_seeded_jitter_stays_within_one_second() -> None:
    s = Scenario(rng=random.Random(7))
    s.start()
    s.last(D)
    previous = s.now
    for base in (4, 8, 16, 32, 64, 64):
        s.fire()
        s.last(D)
        assert base - 1 <= s.now - previous <= base + 1
        previous = s.now


def test_discover_tries_then_leasefail_then_pause_like_udhcpc() -> None:
    s = Scenario(config(discover_tries=3, discover_interval=3.0, failure_pause=20.0))
    s.start()
    first = s.last(D)
    assert s.fire() == START + 3
    s.last(D)
    assert s.fire() == START + 6
    s.last(D)
    assert s.fire() == START + 9
    assert s.sent() == []
    assert s.events() == [LeaseFailed()]
    assert s.client.state is State.INIT
    assert s.client.get_timer() == START + 29
    s.fire()
    again = s.last(D)
    assert again.xid != first.xid and again.secs == 0
    assert s.client.state is State.SELECTING


def test_request_retransmits_then_starts_over() -> None:
    s = Scenario(config(request_tries=2))
    s.start()
    s.deliver(s.server.offer(s.last(D)))
    first = s.last(R)
    assert s.fire() == START + 4
    assert s.last(R).xid == first.xid
    assert s.fire() == START + 12
    discover = s.last(D)
    assert discover.xid != first.xid
    assert s.client.state is State.SELECTING


def test_requested_address_hostname_vendor_and_extra_options_are_sent() -> None:
    cfg = config(
        requested_address=IPv4Address("192.0.2.77"),
        hostname="box",
        vendor_class=b"privsep",
        request_options=(3, 252),
        extra_options=((77, b"\x01\x02"),),
        client_id_mode="mac",
    )
    s = Scenario(cfg)
    s.start()
    discover = s.last(D)
    assert discover.get(50) == IPv4Address("192.0.2.77")
    assert discover.get(12) == "box"
    assert discover.get(60) == b"privsep"
    assert discover.get(55) == (*DEFAULT_REQUEST_OPTIONS, 252)
    assert discover.get(77) == b"\x01\x02"
    assert discover.get(61) == b"\x01" + CLIENT_MAC


def test_without_default_request_options_only_the_asked_ones_or_no_option_55() -> None:
    s = Scenario(config(default_request_options=False, request_options=(3, 6)))
    s.start()
    assert s.last(D).get(55) == (3, 6)
    s = Scenario(config(default_request_options=False))
    s.start()
    assert s.last(D).option(55) is None


def test_explicit_client_id_and_none_mode() -> None:
    s = Scenario(config(client_id=b"\x00abc"))
    s.start()
    assert s.last(D).get(61) == b"\x00abc"
    s = Scenario(config(client_id_mode="none"))
    s.start()
    assert s.last(D).option(61) is None


@pytest.mark.parametrize(
    "kw",
    [
        {"mac": b"\x01" * 6},
        {"mac": b"\x00" * 6},
        {"mac": b"\x02" * 5},
        {"client_id": b"x"},
        {"client_id_mode": "weird"},
        {"iaid": -1},
        {"hostname": ""},
        {"hostname": "a\x00b"},
        {"vendor_class": b""},
        {"request_options": (0,)},
        {"extra_options": ((53, b"\x01"),)},
        {"extra_options": ((300, b"\x01"),)},
        {"extra_options": ((3, b"\x01\x02"),)},
        {"extra_options": ((224, b"x" * 256),)},
        {"extra_options": tuple((c, b"x" * 200) for c in (224, 225, 226, 227))},
        {"max_message_size": 500},
        {"discover_tries": 0},
        {"request_tries": 0},
        {"discover_interval": 0.0},
        {"min_retry": 0.0},
    ],
)
def test_config_rejects_bad_values(kw: dict[str, object]) -> None:
    values: dict[str, object] = {"mac": CLIENT_MAC, **kw}
    with pytest.raises(InvalidConfig):
        ClientConfig(**values)  # type: ignore[arg-type]


# -- renew, rebind, expire --------------------------------------------------------------


def test_renew_at_t1_unicast_then_rebind_at_t2_broadcast_then_expire() -> None:
    s = Scenario()
    lease = s.bind()
    s.events()
    t1, t2, end = lease.t1_at, lease.t2_at, lease.expires_at
    assert (t1, t2, end) == (2801.0, 4151.0, 4601.0)

    assert s.fire() == t1
    assert s.client.state is State.RENEWING
    [out] = s.sent_dhcp()
    renew = out.message
    assert out.kind is R
    assert (out.frame.src_ip, out.frame.dst_ip) == (ADDRESS, SERVER_IP)
    assert out.frame.dst_mac == SERVER_MAC  # the ACK frame's Ethernet source
    assert renew.ciaddr == ADDRESS and renew.option(50) is None and renew.option(54) is None
    # RFC 2131 §4.4.5: retry at half the time left to T2, but at least 60 s.
    expected = [t1]
    now = t1
    while now + max((t2 - now) / 2, 60) < t2:
        now += max((t2 - now) / 2, 60)
        expected.append(now)
    fired = [t1]
    while (deadline := s.client.get_timer()) is not None and deadline < t2:
        fired.append(s.fire())
        [again] = s.sent_dhcp()
        assert again.frame.dst_ip == SERVER_IP and again.message.xid == renew.xid
    assert fired == expected == [2801.0, 3476.0, 3813.5, 3982.25, 4066.625, 4126.625]

    assert s.fire() == t2
    assert s.client.state is State.REBINDING
    [out] = s.sent_dhcp()
    assert (out.frame.src_ip, out.frame.dst_ip, out.frame.dst_mac) == (
        ADDRESS,
        BCAST,
        BROADCAST_MAC,
    )
    assert out.message.ciaddr == ADDRESS and out.message.xid != renew.xid
    assert s.client.get_timer() == t2 + 225.0  # half of the 450 s left to expiry
    while (deadline := s.client.get_timer()) is not None and deadline < end:
        s.fire()
        assert [o.frame.dst_ip for o in s.sent_dhcp()] == [BCAST]

    assert s.fire() == end
    assert s.events() == [LeaseExpired(lease)]
    assert s.client.state is State.SELECTING and s.client.lease is None
    discover = s.last(D)
    assert discover.get(50) == ADDRESS  # ask for the old address again


def test_renew_ack_extends_the_lease_from_t1() -> None:
    s = Scenario()
    lease = s.bind()
    s.events()
    s.fire()
    renew = s.last(R)
    s.deliver(s.server.ack(renew, options={6: (IPv4Address("192.0.2.54"),)}), at=2810.0)
    [renewed] = s.events()
    assert isinstance(renewed, LeaseRenewed)
    assert renewed.lease.acquired_at == lease.t1_at == 2801.0
    assert renewed.lease.dns == (IPv4Address("192.0.2.54"),)
    assert s.client.state is State.BOUND
    assert s.client.get_timer() == 2801.0 + 1800


def test_rebind_ack_from_another_server_is_accepted() -> None:
    s = Scenario()
    s.bind()
    s.fire()  # T1
    s.sent()
    while s.client.state is State.RENEWING:
        s.fire()
    rebind = s.sent_dhcp()[-1].message
    other = FakeServer(ip=OTHER_SERVER_IP, mac=OTHER_MAC)
    s.events()
    s.deliver(other.ack(rebind))
    [renewed] = s.events()
    assert isinstance(renewed, LeaseRenewed)
    assert renewed.lease.server_id == OTHER_SERVER_IP and renewed.lease.server_mac == OTHER_MAC


def test_driver_that_slept_past_expiry_goes_straight_to_init() -> None:
    s = Scenario()
    lease = s.bind()
    s.events()
    s.at(99999.0)
    s.client.handle_timer(s.now)
    assert s.events() == [LeaseExpired(lease)]
    assert [o.kind for o in s.sent_dhcp()] == [D]


def test_inconsistent_t1_t2_fall_back_to_half_and_seven_eighths() -> None:
    s = Scenario()
    lease = s.bind(ack_options={58: 3000, 59: 2000})
    assert (lease.t1, lease.t2) == (1800.0, 3150.0)


def test_consistent_server_t1_t2_are_used() -> None:
    s = Scenario()
    lease = s.bind(ack_options={58: 600, 59: 1200})
    assert (lease.t1, lease.t2) == (600.0, 1200.0)


def test_lease_time_one_second_is_honoured() -> None:
    s = Scenario()
    lease = s.bind(ack_options={51: 1})
    assert (lease.lease_time, lease.t1, lease.t2) == (1, 0.5, 0.875)
    assert s.client.get_timer() == lease.acquired_at + 0.5


def test_infinite_lease_arms_no_timer() -> None:
    s = Scenario()
    lease = s.bind(ack_options={51: 0xFFFFFFFF})
    assert lease.infinite and lease.t1 is None and lease.expires_at is None
    assert s.client.get_timer() is None


def test_ack_without_lease_time_takes_the_offers() -> None:
    s = Scenario()
    s.start()
    s.deliver(s.server.offer(s.last(D), options={51: 600}))
    lease_ack = s.server.ack(s.last(R), options={51: None})
    s.deliver(lease_ack)
    assert s.client.lease is not None and s.client.lease.lease_time == 600


def test_ack_without_mask_uses_the_classful_prefix() -> None:
    s = Scenario()
    assert s.bind(ack_options={1: None}).prefix_len == 24  # 192.0.2.10 is class C
    s = Scenario()
    s.server.address = IPv4Address("10.1.2.3")
    assert s.bind(ack_options={1: None}).prefix_len == 8
    s = Scenario()
    s.server.address = IPv4Address("172.16.2.3")
    assert s.bind(ack_options={1: None}).prefix_len == 16


def test_lease_keeps_options_and_extra_raw_options() -> None:
    s = Scenario()
    lease = s.bind(
        ack_options={
            12: "host",
            15: "example.org",
            119: ("a.example", "b.example"),
            26: 1400,
            28: IPv4Address("192.0.2.255"),
            42: (IPv4Address("192.0.2.123"),),
            100: "EST5EDT",
            224: b"\x00\xff",
        }
    )
    assert lease.hostname == "host" and lease.domain == "example.org"
    assert lease.search == ("a.example", "b.example")
    assert lease.mtu == 1400 and lease.broadcast == IPv4Address("192.0.2.255")
    assert lease.ntp == (IPv4Address("192.0.2.123"),)
    # Raw options no typed field carries, for the hook's optNNN (53 too, like udhcpc).
    assert lease.extra == ((53, b"\x05"), (100, b"EST5EDT"), (224, b"\x00\xff"))


def test_extra_keeps_raw_options_whose_typed_field_stayed_empty() -> None:
    from privsep.services.dhcp._options import ClasslessRoute

    routes = (ClasslessRoute(IPv4Network("0.0.0.0/1"), SERVER_IP),)
    lease = Scenario().bind(ack_options={58: 900, 59: 1000, 121: routes, 12: "h" * 2000})
    codes = [code for code, _ in lease.extra]
    # 3 (ignored beside 121) and 12 (too long) stay raw; 58/59 as the server sent
    # them; 121 never, whatever the route policy removed.
    assert codes == [3, 12, 53, 58, 59]
    assert lease.routers == () and lease.classless_routes == ()


def test_mtu_below_68_is_ignored() -> None:
    s = Scenario()
    assert s.bind(ack_options={26: 67}).mtu is None


def _lost(s: Scenario) -> tuple[object, str]:
    [event] = s.events()
    assert isinstance(event, LeaseLost)
    return event.lease, event.reason


# -- NAK --------------------------------------------------------------------------------


def test_nak_in_requesting_restarts_after_backoff() -> None:
    s = Scenario()
    s.start()
    s.deliver(s.server.offer(s.last(D)))
    request = s.last(R)
    s.deliver(s.server.nak(request, options={56: "address taken"}), at=START + 2)
    [lost] = s.events()
    assert lost == LeaseLost(
        None,
        "NAK from 192.0.2.1: address taken",
        ((53, b"\x06"), (54, SERVER_IP.packed), (56, b"address taken")),
    )
    assert s.client.state is State.INIT
    assert s.client.get_timer() == START + 2 + 3.0
    s.fire()
    discover = s.last(D)
    assert discover.option(50) is None and discover.xid != request.xid


def test_repeated_naks_double_the_backoff_up_to_64s() -> None:
    s = Scenario()
    s.start()
    waits = []
    for _ in range(7):
        s.deliver(s.server.offer(s.last(D)))
        s.deliver(s.server.nak(s.last(R)))
        waits.append(s.client.get_timer() - s.now)  # type: ignore[operator]
        s.fire()
    assert waits == [3.0, 6.0, 12.0, 24.0, 48.0, 64.0, 64.0]


def test_nak_in_renewing_loses_the_lease() -> None:
    s = Scenario()
    lease = s.bind()
    s.events()
    s.fire()
    s.deliver(s.server.nak(s.last(R)))
    assert _lost(s) == (lease, "NAK from 192.0.2.1")
    assert s.client.lease is None and s.client.state is State.INIT


def test_nak_from_a_foreign_server_while_renewing_is_ignored() -> None:
    s = Scenario()
    lease = s.bind()
    s.events()
    s.fire()
    renew = s.last(R)
    rogue = FakeServer(ip=OTHER_SERVER_IP, mac=OTHER_MAC)
    s.deliver(rogue.nak(renew))
    [dropped] = s.events()
    assert isinstance(dropped, PacketDropped) and "192.0.2.2" in dropped.reason
    assert s.client.state is State.RENEWING and s.client.lease == lease
    s.deliver(s.server.ack(renew))
    assert isinstance(s.events()[0], LeaseRenewed)


def test_nak_from_any_server_counts_while_rebinding() -> None:
    s = Scenario()
    lease = s.bind()
    s.fire()
    while s.client.state is State.RENEWING:
        s.fire()
    rebind = s.sent_dhcp()[-1].message
    s.events()
    other = FakeServer(ip=OTHER_SERVER_IP, mac=OTHER_MAC)
    s.deliver(other.nak(rebind))
    assert _lost(s) == (lease, "NAK from 192.0.2.2")


# -- INIT-REBOOT -------------------------------------------------------------------------


def test_init_reboot_requests_the_saved_address_and_binds_on_ack() -> None:
    saved = make_lease(acquired_at=START - 100)
    s = Scenario(saved_lease=saved)
    s.start()
    assert s.client.state is State.REBOOTING
    [out] = s.sent_dhcp()
    assert out.kind is R and out.frame.dst_ip == BCAST
    assert out.message.get(50) == ADDRESS and out.message.option(54) is None
    assert out.message.ciaddr == ANY
    s.deliver(s.server.ack(out.message), at=START + 0.2)
    [acquired] = s.events()
    assert isinstance(acquired, LeaseAcquired)
    assert acquired.lease.address == ADDRESS and acquired.lease.acquired_at == START


def test_init_reboot_nak_falls_back_to_init() -> None:
    saved = make_lease(acquired_at=START - 100)
    s = Scenario(saved_lease=saved)
    s.start()
    other = FakeServer(ip=OTHER_SERVER_IP, mac=OTHER_MAC)
    s.deliver(other.nak(s.last(R)))
    assert _lost(s) == (saved, "NAK from 192.0.2.2")
    assert s.client.state is State.INIT
    s.fire()
    assert s.last(D).option(50) is None


def test_init_reboot_silence_keeps_a_valid_saved_lease() -> None:
    saved = make_lease(acquired_at=START - 100)
    s = Scenario(config(reboot_tries=2), saved_lease=saved)
    s.start()
    s.last(R)
    assert s.fire() == START + 4
    s.last(R)
    assert s.fire() == START + 12
    assert s.sent() == []
    assert s.events() == [LeaseAcquired(saved)]
    assert s.client.state is State.BOUND
    assert s.client.get_timer() == saved.t1_at


def test_init_reboot_silence_with_the_lease_run_out_goes_to_init() -> None:
    saved = make_lease(acquired_at=START - 3595)  # expires at START + 5
    s = Scenario(config(reboot_tries=2), saved_lease=saved)
    s.start()
    s.last(R)
    s.fire()
    s.last(R)
    s.fire()
    assert s.events() == []
    assert s.client.state is State.SELECTING
    assert s.last(D).get(50) == ADDRESS


def test_expired_saved_lease_starts_at_init_asking_for_its_address() -> None:
    s = Scenario(saved_lease=make_lease(acquired_at=START - 4000))
    s.start()
    assert s.client.state is State.SELECTING
    assert s.last(D).get(50) == ADDRESS


def test_stop_then_start_reboots_with_the_lease_in_use() -> None:
    s = Scenario()
    lease = s.bind()
    s.client.stop()
    s.client.stop()  # idempotent
    assert s.client.state is State.STOPPED and s.client.get_timer() is None
    s.client.start(s.now)
    assert s.client.state is State.REBOOTING
    assert s.last(R).get(50) == lease.address


def test_start_twice_is_a_caller_error() -> None:
    s = Scenario()
    s.start()
    with pytest.raises(EngineStateError):
        s.start()


# -- RFC 5227 probing, DECLINE --------------------------------------------------------------


def _probing(**kw: object) -> Scenario:
    s = Scenario(config(arp_probe=True, **kw))
    s.start()
    s.deliver(s.server.offer(s.last(D)))
    s.deliver(s.server.ack(s.last(R)))
    assert s.client.state is State.PROBING
    assert s.events() == [] and s.client.lease is None
    return s


def test_arp_probes_then_announces_then_binds() -> None:
    s = _probing()
    acked = s.now
    times = []
    probes = []
    while s.client.state is State.PROBING:
        times.append(s.fire())
        probes += s.sent()
    # PROBE_WAIT (0.5 with fixed jitter), then 3 probes PROBE_MIN..PROBE_MAX apart,
    # then ANNOUNCE_WAIT 2 s.
    assert times == [acked + 0.5, acked + 2.0, acked + 3.5, acked + 5.5]
    arps = [p for p in probes if isinstance(p, ArpOut)]
    assert len(arps) == 4  # 3 probes + the first announcement
    for probe in arps[:3]:
        assert probe.dst == BROADCAST_MAC and probe.arp.op == ARP_REQUEST
        assert probe.arp.sender_ip == ANY and probe.arp.target_ip == ADDRESS
        assert probe.arp.sender_mac == CLIENT_MAC and probe.arp.target_mac == bytes(6)
    announce = arps[3].arp
    assert announce.sender_ip == announce.target_ip == ADDRESS
    [acquired] = s.events()
    assert isinstance(acquired, LeaseAcquired)
    assert s.fire() == acked + 7.5
    [second] = s.sent()
    assert isinstance(second, ArpOut) and second.arp.sender_ip == ADDRESS
    assert s.client.get_timer() == acquired.lease.t1_at


def test_arp_reply_during_probing_declines_and_restarts_after_backoff() -> None:
    s = _probing(decline_backoff=10.0)
    s.fire()
    s.sent()
    s.deliver(arp_reply_from(OTHER_MAC, ADDRESS), at=s.now + 0.3)
    [decline] = s.sent_dhcp()
    assert decline.kind is MessageType.DECLINE and decline.frame.dst_ip == BCAST
    assert decline.message.get(50) == ADDRESS and decline.message.get(54) == SERVER_IP
    assert decline.message.ciaddr == ANY
    assert s.events() == [AddressConflict(ADDRESS, OTHER_MAC, lease_in_use=False)]
    assert s.client.state is State.DECLINED
    assert s.client.get_timer() == s.now + 10.0
    s.fire()
    assert s.client.state is State.SELECTING
    assert s.last(D).option(50) is None


def test_another_hosts_probe_for_our_address_is_a_conflict() -> None:
    s = _probing()
    s.deliver(arp_probe_from(OTHER_MAC, ADDRESS))
    assert isinstance(s.events()[0], AddressConflict)


def test_unrelated_arp_and_our_own_probe_are_not_conflicts() -> None:
    s = _probing()
    s.deliver(arp_reply_from(OTHER_MAC, IPv4Address("192.0.2.99")))
    s.deliver(arp_probe_from(CLIENT_MAC, ADDRESS))
    s.deliver(arp_probe_from(OTHER_MAC, IPv4Address("192.0.2.99")))
    assert s.events() == [] and s.client.state is State.PROBING


def test_arp_while_not_probing_is_ignored_silently() -> None:
    s = Scenario()
    s.bind()
    s.events()
    s.deliver(arp_reply_from(OTHER_MAC, ADDRESS))
    assert s.events() == [] and s.client.state is State.BOUND


def test_report_conflict_while_bound_declines_the_lease_in_use() -> None:
    s = Scenario()
    s.bind()
    s.events()
    assert s.client.report_conflict(s.now, OTHER_MAC)
    assert s.last(MessageType.DECLINE).get(50) == ADDRESS
    assert s.events() == [AddressConflict(ADDRESS, OTHER_MAC, lease_in_use=True)]
    assert s.client.lease is None and s.client.state is State.DECLINED


def test_report_conflict_while_probing_and_when_idle() -> None:
    s = _probing()
    assert s.client.report_conflict(s.now)
    assert s.events() == [AddressConflict(ADDRESS, None, lease_in_use=False)]
    assert not s.client.report_conflict(s.now)  # DECLINED: nothing to decline


def test_ten_conflicts_rate_limit_to_60s() -> None:
    s = _probing()
    for _ in range(9):
        s.client.report_conflict(s.now)
        s.last(MessageType.DECLINE)
        assert s.client.get_timer() == s.now + 10.0
        s.fire()
        s.deliver(s.server.offer(s.last(D)))
        s.deliver(s.server.ack(s.last(R)))
    s.client.report_conflict(s.now)
    assert s.client.get_timer() == s.now + 60.0


def test_reboot_ack_is_probed_too() -> None:
    s = Scenario(config(arp_probe=True), saved_lease=make_lease(acquired_at=START - 100))
    s.start()
    s.deliver(s.server.ack(s.last(R)))
    assert s.client.state is State.PROBING


# -- RELEASE, stop ----------------------------------------------------------------------


def test_release_unicasts_to_the_server_and_stops() -> None:
    s = Scenario()
    lease = s.bind()
    s.events()
    s.client.release(s.now)
    [out] = s.sent_dhcp()
    assert out.kind is MessageType.RELEASE
    assert (out.frame.dst_ip, out.frame.dst_mac, out.frame.src_ip) == (
        SERVER_IP,
        SERVER_MAC,
        ADDRESS,
    )
    assert out.message.ciaddr == ADDRESS and out.message.get(54) == SERVER_IP
    assert s.events() == [LeaseReleased(lease)]
    assert s.client.state is State.STOPPED and s.client.get_timer() is None
    s.client.start(s.now)  # a released lease is not rebooted
    assert s.client.state is State.SELECTING


def test_release_without_a_lease_just_stops() -> None:
    s = Scenario()
    s.start()
    s.sent()
    s.client.release(s.now)
    assert s.sent() == [] and s.client.state is State.STOPPED


def test_frames_to_a_stopped_client_are_dropped() -> None:
    s = Scenario()
    s.deliver(b"\x00" * 60)
    assert s.events() == [PacketDropped("client is stopped")]


# -- rapid commit, IPv6-only preferred ---------------------------------------------------------


def test_rapid_commit_ack_binds_from_selecting() -> None:
    s = Scenario(config(rapid_commit=True))
    s.start()
    discover = s.last(D)
    assert discover.option(80) == b""
    s.deliver(s.server.ack(discover, options={80: True}), at=START + 0.1)
    [acquired] = s.events()
    assert isinstance(acquired, LeaseAcquired) and acquired.lease.acquired_at == START


def test_ack_without_rapid_commit_in_selecting_is_dropped() -> None:
    s = Scenario(config(rapid_commit=True))
    s.start()
    s.deliver(s.server.ack(s.last(D)))
    assert s.events() == [PacketDropped("ACK without rapid commit in SELECTING")]
    s = Scenario()
    s.start()
    s.deliver(s.server.ack(s.last(D), options={80: True}))
    assert s.events() == [PacketDropped("ACK without rapid commit in SELECTING")]


def test_rapid_commit_server_may_still_offer() -> None:
    s = Scenario(config(rapid_commit=True))
    s.start()
    s.deliver(s.server.offer(s.last(D)))
    assert s.client.state is State.REQUESTING


@pytest.mark.parametrize(("value", "wait"), [(0, 300.0), (1800, 1800.0)])
def test_ipv6_only_preferred_offer_pauses_dhcpv4(value: int, wait: float) -> None:
    s = Scenario(config(ipv6_only_preferred=True))
    s.start()
    discover = s.last(D)
    assert 108 in discover.get(55)  # type: ignore[operator]
    s.deliver(s.server.offer(discover, options={108: value}))
    assert s.events() == [Ipv6OnlyPreferred(wait)]
    assert s.sent() == [] and s.client.state is State.INIT
    assert s.client.get_timer() == START + wait
    s.fire()
    assert s.last(D).xid != discover.xid


def test_option_108_is_ignored_unless_requested() -> None:
    s = Scenario()
    s.start()
    s.deliver(s.server.offer(s.last(D), options={108: 0}))
    assert s.client.state is State.REQUESTING


def test_ipv6_only_preferred_in_reboot_ack() -> None:
    cfg = config(ipv6_only_preferred=True)
    s = Scenario(cfg, saved_lease=make_lease(acquired_at=START))
    s.start()
    s.deliver(s.server.ack(s.last(R), options={108: 600}))
    assert s.events() == [Ipv6OnlyPreferred(600.0)]


# -- misc ---------------------------------------------------------------------------------------


def test_handle_timer_with_nothing_due_does_nothing() -> None:
    s = Scenario()
    s.client.handle_timer(START)
    s.start()
    s.sent()
    s.client.handle_timer(START + 1)
    assert s.sent() == []


def test_conflict_on_the_configured_address_stops_asking_for_it() -> None:
    s = _probing(requested_address=ADDRESS)
    s.client.report_conflict(s.now)
    s.sent()
    s.fire()
    assert s.last(D).option(50) is None


def test_ipv6_only_wanted_but_not_offered_binds_normally() -> None:
    s = Scenario(config(ipv6_only_preferred=True))
    assert s.bind().address == ADDRESS


@pytest.mark.parametrize("prefix", [31, 32])
def test_point_to_point_prefixes_bind(prefix: int) -> None:
    from engine_helpers import mask

    assert Scenario().bind(ack_options={1: mask(prefix)}).prefix_len == prefix


# -- renew_now (udhcpc's SIGUSR1), pending_lease ------------------------------------------------


def _changes(s: Scenario) -> list[tuple[State, State]]:
    return [(e.old, e.new) for e in s.events(states=True) if isinstance(e, StateChanged)]


def test_renew_now_while_stopped_starts() -> None:
    s = Scenario()
    s.bind()
    s.client.release(s.now)
    s.sent()
    s.events()
    s.at(1500.0)
    assert s.client.renew_now(s.now)
    discover = s.last(D)
    assert discover.secs == 0 and discover.option(50) is None  # a released lease is not asked for
    assert s.client.state is State.SELECTING
    assert s.client.get_timer() == 1504.0


def test_renew_now_in_selecting_starts_a_new_exchange_through_init() -> None:
    s = Scenario(config(discover_tries=2, discover_interval=3.0))
    s.start()
    first = s.last(D)
    assert s.fire() == START + 3  # second and last try of the first exchange
    s.last(D)
    s.events(states=True)
    s.at(START + 5)
    assert s.client.renew_now(s.now)
    discover = s.last(D)
    assert discover.xid != first.xid and discover.secs == 0
    assert _changes(s) == [(State.SELECTING, State.INIT), (State.INIT, State.SELECTING)]
    # Tries count from 0 again: two more DISCOVERs before LeaseFailed.
    assert s.fire() == START + 8
    assert s.last(D).xid == discover.xid
    assert s.fire() == START + 11
    assert s.events() == [LeaseFailed()]


def test_renew_now_in_requesting_drops_the_offer_and_discovers() -> None:
    s = Scenario()
    s.start()
    s.deliver(s.server.offer(s.last(D)), at=START + 1)
    request = s.last(R)
    s.events(states=True)
    s.at(START + 2)
    assert s.client.renew_now(s.now)
    discover = s.last(D)
    assert discover.xid != request.xid and discover.secs == 0
    assert _changes(s) == [(State.REQUESTING, State.INIT), (State.INIT, State.SELECTING)]
    assert s.client.get_timer() == START + 2 + 4.0
    s.deliver(s.server.ack(request), at=START + 3)  # the old exchange is over
    assert isinstance(s.events()[0], PacketDropped) and s.client.state is State.SELECTING


def test_renew_now_during_the_nak_backoff_discovers_at_once() -> None:
    s = Scenario()
    s.start()
    s.deliver(s.server.offer(s.last(D)))
    s.deliver(s.server.nak(s.last(R)), at=START + 2)
    s.events(states=True)
    assert s.client.get_timer() == START + 5.0
    s.at(START + 3)
    assert s.client.renew_now(s.now)
    assert s.last(D).secs == 0
    assert _changes(s) == [(State.INIT, State.SELECTING)]
    assert s.client.get_timer() == START + 3 + 4.0  # the backoff deadline is gone


def test_renew_now_during_the_leasefail_pause_discovers_at_once() -> None:
    s = Scenario(config(discover_tries=1, discover_interval=3.0, failure_pause=20.0))
    s.start()
    s.last(D)
    s.fire()
    assert s.events() == [LeaseFailed()] and s.client.get_timer() == START + 23
    s.at(START + 10)
    assert s.client.renew_now(s.now)
    s.last(D)
    assert s.client.state is State.SELECTING and s.client.get_timer() == START + 13


def test_renew_now_while_bound_renews_as_if_t1_fired() -> None:
    s = Scenario()
    lease = s.bind()
    s.events(states=True)
    s.at(2000.0)
    assert s.client.renew_now(s.now)
    assert _changes(s) == [(State.BOUND, State.RENEWING)]
    [out] = s.sent_dhcp()
    assert out.kind is R and out.message.secs == 0
    assert (out.frame.src_ip, out.frame.dst_ip, out.frame.dst_mac) == (
        ADDRESS,
        SERVER_IP,
        SERVER_MAC,
    )
    assert out.message.ciaddr == ADDRESS and out.message.option(50) is None
    # Retry at half the 2151 s left to T2 (4151), which stays where it was.
    assert s.client.get_timer() == 2000.0 + 1075.5
    s.deliver(s.server.ack(out.message), at=2000.5)
    [renewed] = s.events()
    assert isinstance(renewed, LeaseRenewed)
    assert renewed.lease.acquired_at == 2000.0  # the lease runs from the early REQUEST
    assert s.client.get_timer() == 2000.0 + 1800
    assert lease.t2_at == 4151.0


def test_renew_now_while_bound_keeps_t2_and_expiry_if_no_answer() -> None:
    s = Scenario()
    s.bind()
    s.at(2000.0)
    s.client.renew_now(s.now)
    s.sent()
    while (deadline := s.client.get_timer()) is not None and deadline < 4151.0:
        s.fire()
        s.sent()
    assert s.fire() == 4151.0 and s.client.state is State.REBINDING


def test_renew_now_while_bound_past_t2_rebinds_instead() -> None:
    s = Scenario()
    s.bind()
    s.events(states=True)
    s.at(4200.0)  # the driver slept past T2: the later stage wins, as in handle_timer
    assert s.client.renew_now(s.now)
    assert _changes(s) == [(State.BOUND, State.REBINDING)]
    assert [o.frame.dst_ip for o in s.sent_dhcp()] == [BCAST]
    assert s.client.get_timer() == 4200.0 + 200.5


def test_renew_now_with_an_infinite_lease_does_nothing() -> None:
    s = Scenario()
    s.bind(ack_options={51: 0xFFFFFFFF})
    s.events(states=True)
    assert not s.client.renew_now(s.now + 10)
    assert s.sent() == [] and s.events(states=True) == []
    assert s.client.state is State.BOUND and s.client.get_timer() is None


def test_renew_now_while_renewing_retransmits_the_unicast_request_now() -> None:
    s = Scenario()
    s.bind()
    s.fire()
    renew = s.last(R)
    assert s.client.get_timer() == 3476.0
    s.events(states=True)
    s.at(3000.0)
    assert s.client.renew_now(s.now)
    [out] = s.sent_dhcp()
    assert out.message.xid == renew.xid and out.message.secs == 199
    assert out.frame.dst_ip == SERVER_IP
    assert s.events(states=True) == [] and s.client.state is State.RENEWING
    assert s.client.get_timer() == 3000.0 + 575.5  # half the 1151 s left to T2


def test_renew_now_while_rebinding_retransmits_the_broadcast_request_now() -> None:
    s = Scenario()
    s.bind()
    s.fire()
    while s.client.state is State.RENEWING:
        s.sent()
        s.fire()
    rebind = s.last(R)
    assert s.now == 4151.0 and s.client.get_timer() == 4376.0
    s.events(states=True)
    s.at(4201.0)
    assert s.client.renew_now(s.now)
    [out] = s.sent_dhcp()
    assert out.message.xid == rebind.xid and out.frame.dst_ip == BCAST
    assert s.events(states=True) == [] and s.client.state is State.REBINDING
    assert s.client.get_timer() == 4201.0 + 200.0  # half the 400 s left to expiry


def test_renew_now_while_rebooting_resends_the_request_now() -> None:
    saved = make_lease(acquired_at=START - 100)
    s = Scenario(config(reboot_tries=2), saved_lease=saved)
    s.start()
    first = s.last(R)
    assert s.client.get_timer() == START + 4
    s.at(START + 1)
    assert s.client.renew_now(s.now)
    again = s.last(R)
    assert again.xid == first.xid and again.secs == 1 and again.get(50) == ADDRESS
    assert s.client.get_timer() == START + 1 + 8  # the second try's backoff
    s.fire()
    assert s.events() == [LeaseAcquired(saved)]  # reboot_tries spent, lease still valid


def test_renew_now_while_probing_or_declined_does_nothing() -> None:
    s = _probing()
    deadline = s.client.get_timer()
    assert not s.client.renew_now(s.now)
    assert s.sent() == [] and s.client.get_timer() == deadline
    assert s.client.state is State.PROBING
    s.client.report_conflict(s.now)
    s.sent()
    s.events(states=True)
    assert s.client.get_timer() == s.now + 10.0
    assert not s.client.renew_now(s.now + 1)
    assert s.sent() == [] and s.events(states=True) == []
    assert s.client.state is State.DECLINED and s.client.get_timer() == s.now + 10.0


def test_pending_lease_is_the_acked_lease_only_while_probing() -> None:
    s = Scenario(config(arp_probe=True))
    assert s.client.pending_lease is None
    s.start()
    s.deliver(s.server.offer(s.last(D)))
    request = s.last(R)
    assert s.client.pending_lease is None
    s.deliver(s.server.ack(request))
    pending = s.client.pending_lease
    assert pending is not None and pending.address == ADDRESS
    assert s.client.lease is None
    while s.client.state is State.PROBING:
        s.fire()
    assert s.client.pending_lease is None and s.client.lease == pending
