"""The actuator against a real kernel: its own netns with a veth pair, read back with `ip -j`.

The test process never enters the namespace: like the real actuator, it gets a
NETLINK_ROUTE socket opened inside the namespace (by a short-lived thread that
setns()es) and does everything through it.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address as A
from pathlib import Path
from typing import Any

import pytest
from netns_helpers import netlink_socket_in, veth_netns

from privsep.services.dhcp._actuator import (
    APPLIED_RECORD,
    SCHEMA_PATH,
    Actuator,
    ActuatorRejected,
    Applied,
    Configuration,
    Limits,
    RouteRequest,
    configuration_from_message,
    route_metric_for,
)
from privsep.services.dhcp._netconfig import NetConfig, NetlinkFailed
from privsep.services.dhcp._statedir import StateDir

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]

IFACE = "pa0"


# -- namespace plumbing -------------------------------------------------------


def ip(*args: str, ns: str, check: bool = True) -> str:
    result = subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"ip -n {ns} {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def ip_json(*args: str, ns: str) -> Any:
    return json.loads(ip("-j", *args, ns=ns) or "[]")


@dataclass
class Net:
    ns: str
    ifindex: int
    state: Path
    resolv: Path

    def addresses(self) -> list[tuple[str, int, str | None, int]]:
        """(address, prefix, broadcast, valid_life_time) of the IPv4 addresses on pa0."""
        data = ip_json("-4", "addr", "show", "dev", IFACE, ns=self.ns)
        return sorted(
            (a["local"], a["prefixlen"], a.get("broadcast"), a["valid_life_time"])
            for entry in data
            for a in entry.get("addr_info", ())
        )

    def address_set(self) -> set[str]:
        return {f"{a}/{p}" for a, p, _, _ in self.addresses()}

    def routes(self) -> set[tuple[str, str | None, int | None, str | None]]:
        data = ip_json("-4", "route", "show", "table", "main", ns=self.ns)
        return {
            (r["dst"], r.get("gateway"), r.get("metric"), r.get("protocol"))
            for r in data
            if r.get("dev") == IFACE
        }

    def mtu(self) -> int:
        return int(ip_json("link", "show", "dev", IFACE, ns=self.ns)[0]["mtu"])

    def snapshot(self) -> tuple[object, ...]:
        addrs = tuple((a, p, b) for a, p, b, _ in self.addresses())
        return addrs, frozenset(self.routes()), self.mtu()

    async def actuator(self, **kwargs: Any) -> Actuator:
        sock = netlink_socket_in(self.ns)
        net = await NetConfig.open(sock.detach())
        return await Actuator.start(
            net, StateDir(self.state), ifindex=self.ifindex, resolv_conf=self.resolv, **kwargs
        )


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    with veth_netns() as (ns, ifindex):
        yield Net(ns, ifindex, tmp_path / "state", tmp_path / "resolv.conf")


def lease(**overrides: Any) -> Configuration:
    base: dict[str, Any] = {
        "address": A("10.1.0.5"),
        "prefix_len": 24,
        "routers": (A("10.1.0.1"),),
        "dns": (A("10.1.0.53"),),
        "domain": "example.org",
        "search": ("example.org", "lab.example.org"),
        "lease_time": 600,
        "mtu": 1400,
        "state_blob": b'{"lease": 1}',
    }
    base.update(overrides)
    return Configuration(**base)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- applying -----------------------------------------------------------------


def test_apply_sets_address_broadcast_default_route_mtu_and_resolv_conf(net: Net) -> None:
    async def body() -> None:
        act = await net.actuator()
        await act.apply_lease(lease())
        act.net.close()

    run(body())
    (address,) = net.addresses()
    assert address[:3] == ("10.1.0.5", 24, "10.1.0.255")
    assert 590 <= address[3] <= 600  # the kernel holds the lease time as valid_lft
    assert ("default", "10.1.0.1", 1024, "dhcp") in net.routes()
    assert net.mtu() == 1400
    text = net.resolv.read_text()
    assert "nameserver 10.1.0.53\n" in text
    assert "search example.org lab.example.org\n" in text
    assert StateDir(net.state).load("lease") == b'{"lease": 1}'


def test_apply_classless_routes_and_ignore_option_3(net: Net) -> None:
    config = lease(
        routers=(A("10.1.0.99"),),
        routes=(
            RouteRequest(A("0.0.0.0"), 0, A("10.1.0.1")),
            RouteRequest(A("172.16.0.0"), 12, A("10.1.0.2")),
            RouteRequest(A("192.168.50.0"), 24, A("0.0.0.0")),  # on-link
            RouteRequest(A("198.51.100.0"), 24, A("203.0.113.1")),  # off-subnet router
        ),
    )

    async def body() -> None:
        act = await net.actuator()
        await act.apply_lease(config)
        act.net.close()

    run(body())
    routes = net.routes()
    assert ("default", "10.1.0.1", 1024, "dhcp") in routes
    assert ("172.16.0.0/12", "10.1.0.2", 1024, "dhcp") in routes
    assert ("192.168.50.0/24", None, 1024, "dhcp") in routes
    assert ("203.0.113.1", None, 1024, "dhcp") in routes  # the on-link host route to it
    assert ("198.51.100.0/24", "203.0.113.1", 1024, "dhcp") in routes
    assert not any(gw == "10.1.0.99" for _, gw, _, _ in routes)  # RFC 3442


def test_slash_32_lease_gets_on_link_route_to_its_router(net: Net) -> None:
    async def body() -> None:
        act = await net.actuator()
        await act.apply_lease(
            lease(address=A("100.64.7.9"), prefix_len=32, routers=(A("100.64.0.1"),))
        )
        act.net.close()

    run(body())
    assert net.address_set() == {"100.64.7.9/32"}
    assert {("100.64.0.1", None, 1024, "dhcp"), ("default", "100.64.0.1", 1024, "dhcp")} <= (
        net.routes()
    )


def test_renew_with_same_lease_removes_nothing_and_refreshes_lifetime(net: Net) -> None:
    async def body() -> tuple[object, object]:
        act = await net.actuator()
        await act.apply_lease(lease(lease_time=100))
        first = (net.address_set(), net.routes(), net.mtu())
        await act.apply_lease(lease(lease_time=5000))
        act.net.close()
        return first, (net.address_set(), net.routes(), net.mtu())

    first, second = run(body())
    assert first == second
    ((_, _, _, valid),) = net.addresses()
    assert valid > 4000


def _read_addr_events(sock: socket.socket) -> list[tuple[str, str]]:
    """(NEW|DEL, address) for every RTM_NEWADDR/DELADDR queued on `sock`, in order."""
    events = []
    while True:
        try:
            data = sock.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return events
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            if kind in (20, 21):  # RTM_NEWADDR, RTM_DELADDR
                attr = offset + 16 + 8  # nlmsghdr + ifaddrmsg
                while attr + 4 <= offset + length:
                    alen, atype = struct.unpack_from("=HH", data, attr)
                    if atype == 2 and alen == 8:  # IFA_LOCAL
                        address = socket.inet_ntoa(data[attr + 4 : attr + 8])
                        events.append(("NEW" if kind == 20 else "DEL", address))
                    attr += (alen + 3) & ~3
            offset += (length + 3) & ~3


def test_changed_lease_is_make_before_break_and_old_address_goes(net: Net) -> None:
    monitor = netlink_socket_in(net.ns, socket.SOCK_RAW, groups=0x10)  # RTMGRP_IPV4_IFADDR

    async def body() -> None:
        act = await net.actuator()
        await act.apply_lease(lease())
        _read_addr_events(monitor)
        await act.apply_lease(lease(address=A("10.2.0.7"), routers=(A("10.2.0.1"),)))
        act.net.close()

    run(body())
    events = _read_addr_events(monitor)
    monitor.close()
    assert events.index(("NEW", "10.2.0.7")) < events.index(("DEL", "10.1.0.5"))
    assert net.address_set() == {"10.2.0.7/24"}
    routes = net.routes()
    assert ("default", "10.2.0.1", 1024, "dhcp") in routes
    assert not any(gw == "10.1.0.1" for _, gw, _, _ in routes)
    assert Applied.from_bytes(StateDir(net.state).load(APPLIED_RECORD) or b"").address == (
        __import__("ipaddress").IPv4Interface("10.2.0.7/24")
    )


def test_new_address_in_same_subnet_survives_removal_of_the_old_primary(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    # promote_secondaries is 0 in a new netns: deleting the old primary takes the new
    # (secondary) address with it, and the actuator must put it back.
    async def body() -> None:
        act = await net.actuator()
        await act.apply_lease(lease())
        await act.apply_lease(lease(address=A("10.1.0.77")))
        act.net.close()

    with caplog.at_level("INFO", logger="privsep"):
        run(body())
    assert "secondary-address-flushed" in caplog.messages
    assert net.address_set() == {"10.1.0.77/24"}
    assert ("default", "10.1.0.1", 1024, "dhcp") in net.routes()


def test_rollback_on_netlink_failure_leaves_previous_config_intact(net: Net) -> None:
    async def body() -> None:
        act = await net.actuator()
        await act.apply_lease(
            lease(
                routes=(
                    RouteRequest(A("172.16.0.0"), 12, A("10.1.0.2")),
                    RouteRequest(A("0.0.0.0"), 0, A("10.1.0.1")),
                )
            )
        )
        before = net.snapshot()
        # Someone else's route with the key our next lease needs: the kernel says EEXIST
        # at the third route, after the new address and two routes went in. (Their
        # address keeps the kernel from flushing every route when ours, the last, goes.)
        ip("addr", "add", "192.168.77.1/24", "dev", IFACE, ns=net.ns)
        ip("route", "add", "10.77.0.0/16", "via", "192.168.77.254", "metric", "1024", ns=net.ns)
        foreign = net.snapshot()
        changed = lease(
            address=A("10.1.0.66"),
            mtu=1300,
            routes=(
                RouteRequest(A("192.168.9.0"), 24, A("10.1.0.9")),
                RouteRequest(A("0.0.0.0"), 0, A("10.1.0.1")),
                RouteRequest(A("10.77.0.0"), 16, A("10.1.0.9")),
            ),
        )
        resolv_before = net.resolv.read_text()
        with pytest.raises(NetlinkFailed, match=r"10\.77\.0\.0/16"):
            await act.apply_lease(changed)
        assert net.snapshot() == foreign
        assert before != foreign
        assert net.resolv.read_text() == resolv_before
        # The actuator still knows what it owns: deconfigure leaves the foreign route.
        await act.deconfigure("test")
        act.net.close()

    run(body())
    assert net.address_set() == {"192.168.77.1/24"}
    assert {r for r in net.routes() if r[3] != "kernel"} == {
        ("10.77.0.0/16", "192.168.77.254", 1024, None)
    }
    assert net.mtu() == 1500


def test_rollback_of_a_first_lease_leaves_nothing(net: Net) -> None:
    # Someone else's route with the key the lease needs but another next hop: EEXIST.
    # (The very route the lease asks for would be adopted instead: see below.)
    ip("addr", "add", "192.168.77.1/24", "dev", IFACE, ns=net.ns)
    ip("route", "add", "10.77.0.0/16", "via", "192.168.77.254", "metric", "1024", ns=net.ns)
    before = net.snapshot()

    async def body() -> None:
        act = await net.actuator()
        with pytest.raises(NetlinkFailed):
            await act.apply_lease(
                lease(
                    routes=(
                        RouteRequest(A("0.0.0.0"), 0, A("10.1.0.1")),
                        RouteRequest(A("10.77.0.0"), 16, A("0.0.0.0")),
                    )
                )
            )
        act.net.close()

    run(body())
    assert net.snapshot() == before
    assert not net.resolv.exists()


# -- rejections ---------------------------------------------------------------

HOSTILE = [
    ("unspecified", {"address": A("0.0.0.0")}, "0.0.0.0/8"),
    ("this-network", {"address": A("0.1.2.3")}, "0.0.0.0/8"),
    ("loopback", {"address": A("127.0.0.1")}, "loopback"),
    ("multicast", {"address": A("224.0.0.1")}, "multicast"),
    ("reserved", {"address": A("240.0.0.1")}, "reserved"),
    ("limited-broadcast", {"address": A("255.255.255.255")}, "limited broadcast"),
    ("link-local", {"address": A("169.254.1.1")}, "link-local"),
    ("subnet-broadcast", {"address": A("10.1.0.255")}, "network or broadcast"),
    ("prefix-33", {"prefix_len": 33}, "prefix length 33"),
    ("prefix-0", {"prefix_len": 0}, "prefix length 0"),
    ("bad-broadcast", {"broadcast": A("10.1.0.127")}, "broadcast"),
    (
        "200-routes",
        {"routes": tuple(RouteRequest(A(f"10.{i}.0.0"), 16, A("10.1.0.1")) for i in range(2, 202))},
        "200 routes",
    ),
    ("50-dns", {"dns": tuple(A(f"10.1.0.{i}") for i in range(50))}, "50 DNS"),
    ("20-routers", {"routers": tuple(A(f"10.1.0.{i}") for i in range(1, 21))}, "20 routers"),
    ("router-is-us", {"routers": (A("10.1.0.6"),)}, "our own address"),
    ("router-loopback", {"routers": (A("127.0.0.1"),)}, "loopback"),
    ("dns-multicast", {"dns": (A("239.1.1.1"),)}, "multicast"),
    ("domain-cmd-subst", {"domain": "$(reboot)"}, "not a host name"),
    ("domain-semicolon", {"domain": "a;b"}, "not a host name"),
    ("search-newline", {"search": ("good.example", "evil\nnameserver 6.6.6.6")}, "not a host name"),
    ("search-space", {"search": ("a b",)}, "not a host name"),
    ("domain-oversized", {"domain": "a" * 300}, "not a host name"),
    ("label-oversized", {"domain": "a" * 64 + ".org"}, "not a host name"),
    ("search-7-names", {"search": tuple(f"s{i}.org" for i in range(7))}, "7 search"),
    ("search-too-long", {"search": tuple("x" * 60 + f".s{i}" for i in range(5))}, "256 characters"),
    ("wrong-ifindex", {"interface_index": 999}, "interface index 999"),
    ("mtu-20", {"mtu": 20}, "MTU 20"),
    ("mtu-below-minimum", {"mtu": 67}, "MTU 67"),
    ("lease-0", {"lease_time": 0}, "lease time 0"),
    (
        "tunnelvision",
        {
            "routes": (
                RouteRequest(A("0.0.0.0"), 1, A("10.1.0.1")),
                RouteRequest(A("128.0.0.0"), 1, A("10.1.0.1")),
            )
        },
        "TunnelVision",
    ),
    (
        "route-prefix-33",
        {"routes": (RouteRequest(A("10.9.0.0"), 33, A("10.1.0.1")),)},
        "prefix length 33",
    ),
    (
        "route-host-bits",
        {"routes": (RouteRequest(A("10.9.1.0"), 16, A("10.1.0.1")),)},
        "bits beyond",
    ),
    (
        "route-to-loopback",
        {"routes": (RouteRequest(A("127.0.0.0"), 8, A("10.1.0.1")),)},
        "loopback",
    ),
    (
        "route-via-us",
        {"routes": (RouteRequest(A("10.9.0.0"), 16, A("10.1.0.6")),)},
        "our own address",
    ),
    (
        "route-twice",
        {
            "routes": (
                RouteRequest(A("10.9.0.0"), 16, A("10.1.0.1")),
                RouteRequest(A("10.9.0.0"), 16, A("10.1.0.2")),
            )
        },
        "twice",
    ),
    ("blob-oversized", {"state_blob": b"x" * (64 * 1024)}, "state blob"),
]


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    """One namespace with a good lease applied, shared by the rejection table."""
    with veth_netns() as (ns, ifindex):
        tmp = tmp_path_factory.mktemp("act")
        net = Net(ns, ifindex, tmp / "state", tmp / "resolv.conf")

        async def body() -> None:
            act = await net.actuator()
            await act.apply_lease(lease())
            act.net.close()

        run(body())
        yield net


def test_rejection_table_has_enough_cases() -> None:
    assert len(HOSTILE) >= 20
    assert len({name for name, _, _ in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize(
    ("overrides", "reason"), [(o, r) for _, o, r in HOSTILE], ids=[n for n, _, _ in HOSTILE]
)
def test_hostile_request_is_rejected_and_nothing_applied(
    configured: Net, overrides: dict[str, Any], reason: str
) -> None:
    before = configured.snapshot()
    resolv = configured.resolv.read_bytes()
    record = (configured.state / "applied").read_bytes()
    # Everything else changes too, so a partial apply would show.
    changes = {"address": A("10.1.0.6"), "mtu": 1280, "dns": (A("10.1.0.54"),), "lease_time": 900}
    hostile = lease(**{**changes, **overrides})

    async def body() -> None:
        act = await configured.actuator()
        with pytest.raises(ActuatorRejected, match=reason.replace("(", r"\(")):
            await act.apply_lease(hostile)
        act.net.close()

    run(body())
    assert configured.snapshot() == before
    assert configured.resolv.read_bytes() == resolv
    assert (configured.state / "applied").read_bytes() == record


def test_broad_routes_pass_only_with_the_explicit_flag(net: Net) -> None:
    routes = (
        RouteRequest(A("0.0.0.0"), 1, A("10.1.0.1")),
        RouteRequest(A("128.0.0.0"), 1, A("10.1.0.1")),
    )

    async def body() -> None:
        act = await net.actuator(limits=Limits(allow_broad_routes=True))
        await act.apply_lease(lease(routes=routes))
        act.net.close()

    run(body())
    assert {("0.0.0.0/1", "10.1.0.1", 1024, "dhcp"), ("128.0.0.0/1", "10.1.0.1", 1024, "dhcp")} <= (
        net.routes()
    )


# -- ownership, restart, expiry -------------------------------------------------


def test_an_mtu_over_the_links_maximum_is_left_alone_and_the_lease_applies(net: Net) -> None:
    async def body() -> None:
        act = await net.actuator()
        await act.apply_lease(lease(mtu=70000))  # a veth takes at most 65535
        act.net.close()

    run(body())
    assert net.address_set() == {"10.1.0.5/24"}
    assert net.mtu() == 1500


def _ifindex(ns: str, name: str) -> int:
    return int(json.loads(ip("-j", "link", "show", "dev", name, ns=ns))[0]["ifindex"])


def test_two_interfaces_in_one_namespace_each_get_their_default_route(
    net: Net, tmp_path: Path
) -> None:
    # With one metric for all, the second interface's default route was EEXIST and its
    # whole lease rolled back (QA: a host with two NICs on DHCP).
    ip("link", "add", "pb0", "type", "veth", "peer", "name", "pb1", ns=net.ns)
    ip("link", "set", "pb0", "up", ns=net.ns)
    second = _ifindex(net.ns, "pb0")

    async def body() -> None:
        acts = []
        for ifindex, state, address, router in (
            (net.ifindex, net.state, "10.1.0.5", "10.1.0.1"),
            (second, tmp_path / "state-b", "10.2.0.5", "10.2.0.1"),
        ):
            sock = netlink_socket_in(net.ns)
            act = await Actuator.start(
                await NetConfig.open(sock.detach()),
                StateDir(state),
                ifindex=ifindex,
                resolv_conf="none",
                limits=Limits(route_metric=route_metric_for(ifindex)),
            )
            await act.apply_lease(lease(address=A(address), routers=(A(router),), mtu=None))
            acts.append(act)
        for act in acts:
            act.net.close()

    run(body())
    defaults = json.loads(ip("-j", "-4", "route", "show", "default", ns=net.ns))
    assert {(r["dev"], r["gateway"], r["metric"]) for r in defaults} == {
        (IFACE, "10.1.0.1", route_metric_for(net.ifindex)),
        ("pb0", "10.2.0.1", route_metric_for(second)),
    }


def test_an_mtu_the_link_refuses_though_under_its_max_mtu_is_left_alone(net: Net) -> None:
    # A macvlan reports IFLA_MAX_MTU 65535, but its parent's 1500 is its real limit:
    # the kernel says EINVAL; the MTU stays and the lease applies.
    ip("link", "add", "link", IFACE, "name", "mv0", "type", "macvlan", "mode", "bridge", ns=net.ns)
    ip("link", "set", "mv0", "up", ns=net.ns)
    index = _ifindex(net.ns, "mv0")

    async def body() -> None:
        sock = netlink_socket_in(net.ns)
        act = await Actuator.start(
            await NetConfig.open(sock.detach()),
            StateDir(net.state),
            ifindex=index,
            resolv_conf="none",
        )
        await act.apply_lease(lease(mtu=9000))
        act.net.close()

    run(body())
    link = json.loads(ip("-j", "-4", "addr", "show", "dev", "mv0", ns=net.ns))[0]
    assert link["mtu"] == 1500
    assert [a["local"] for a in link["addr_info"]] == ["10.1.0.5"]


def test_deconfigure_removes_only_what_we_added(net: Net) -> None:
    ip("addr", "add", "192.168.77.1/24", "dev", IFACE, ns=net.ns)
    ip("route", "add", "10.200.0.0/16", "via", "192.168.77.254", "dev", IFACE, ns=net.ns)
    net.resolv.write_text("# mine\nnameserver 9.9.9.9\noptions edns0\n")

    async def body() -> None:
        act = await net.actuator()
        await act.apply_lease(lease())
        await act.deconfigure("release")
        act.net.close()

    run(body())
    assert net.address_set() == {"192.168.77.1/24"}
    assert ("10.200.0.0/16", "192.168.77.254", None, None) in net.routes()
    assert not any(proto == "dhcp" for *_, proto in net.routes())
    assert net.mtu() == 1500
    assert net.resolv.read_text() == "# mine\nnameserver 9.9.9.9\noptions edns0\n"
    assert StateDir(net.state).load("lease") is None


def test_routes_left_as_the_lease_wants_them_are_adopted_when_the_state_is_lost(
    net: Net,
) -> None:
    # A first client configured the interface, then its state dir went (a new
    # --state-dir, a wiped /var/lib): the same lease must still apply, taking over the
    # identical address and routes instead of failing on EEXIST and rolling back.
    wanted = lease(
        routes=(
            RouteRequest(A("172.16.0.0"), 12, A("10.1.0.2")),
            RouteRequest(A("0.0.0.0"), 0, A("10.1.0.1")),
        )
    )

    async def first() -> None:
        act = await net.actuator()
        await act.apply_lease(wanted)
        act.net.close()

    async def second() -> None:
        act = await net.actuator()
        await act.apply_lease(wanted)
        assert net.snapshot() == configured
        await act.deconfigure("stop")  # adopted, so ours to remove
        act.net.close()

    run(first())
    configured = net.snapshot()
    for record in net.state.iterdir():
        record.unlink()
    run(second())
    assert net.address_set() == set()
    assert not any(proto == "dhcp" for *_, proto in net.routes())


def test_restart_keeps_the_address_and_knows_what_it_owns(net: Net) -> None:
    async def first() -> None:
        act = await net.actuator()
        await act.apply_lease(lease())
        act.net.close()  # the actuator "dies" here

    async def second() -> bytes:
        before = net.snapshot()
        act = await net.actuator()  # restart: reads state, touches nothing
        assert net.snapshot() == before
        blob = act.load_state()
        await act.deconfigure("stop")
        act.net.close()
        return blob

    run(first())
    assert run(second()) == b'{"lease": 1}'
    assert net.address_set() == set()
    assert not any(proto == "dhcp" for *_, proto in net.routes())


def test_kernel_expires_the_address_when_the_lease_runs_out(net: Net) -> None:
    async def body() -> None:
        act = await net.actuator()
        await act.apply_lease(lease(lease_time=1, mtu=None))
        act.net.close()

    run(body())
    assert net.address_set() == {"10.1.0.5/24"}
    deadline = time.monotonic() + 5
    while net.address_set() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert net.address_set() == set()


def test_netconfig_refuses_a_socket_that_is_not_netlink_route() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(NetlinkFailed, match="not a NETLINK_ROUTE"):
            run(NetConfig.open(sock.fileno()))
    finally:
        sock.close()


# -- the RPC schema -------------------------------------------------------------


def test_capnp_configuration_converts_to_the_same_configuration() -> None:
    from privsep import rpc

    # Through privsep.rpc's cache only: loading one file twice aborts pycapnp.
    schema = rpc.load_schema(SCHEMA_PATH)
    msg = schema.Configuration.new_message()
    msg.address = int(A("10.1.0.5"))
    msg.prefixLen = 24
    msg.leaseTime = 600
    msg.mtu = 1400
    routers = msg.init("routers", 1)
    routers[0] = int(A("10.1.0.1"))
    routes = msg.init("routes", 1)
    routes[0].destination = int(A("172.16.0.0"))
    routes[0].prefixLen = 12
    routes[0].router = int(A("10.1.0.2"))
    dns = msg.init("dns", 1)
    dns[0] = int(A("10.1.0.53"))
    msg.domain = "example.org"
    search = msg.init("search", 2)
    search[0], search[1] = "example.org", "lab.example.org"
    msg.stateBlob = b'{"lease": 1}'
    config = configuration_from_message(msg.as_reader(), Limits())
    assert config == lease(routes=(RouteRequest(A("172.16.0.0"), 12, A("10.1.0.2")),))


def test_capnp_oversized_lists_are_refused_before_conversion() -> None:
    from privsep import rpc

    # Through privsep.rpc's cache only: loading one file twice aborts pycapnp.
    schema = rpc.load_schema(SCHEMA_PATH)
    msg = schema.Configuration.new_message()
    msg.init("routes", 100_000)
    with pytest.raises(ActuatorRejected, match="100000 routes"):
        configuration_from_message(msg.as_reader(), Limits())


# -- over RPC, as the engine will call it ----------------------------------------


def test_engine_applies_and_is_refused_over_capnp_rpc(net: Net) -> None:
    import capnp

    from privsep import rpc
    from privsep.services.dhcp._actuator import ActuatorRpc

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    async def main(_: None) -> tuple[bytes, str]:
        act = await net.actuator()  # NetConfig under pycapnp's KJ loop
        server = asyncio.ensure_future(
            rpc.serve(a.detach(), SCHEMA_PATH, "Actuator", ActuatorRpc(act))
        )
        try:
            client = await rpc.connect(b.detach(), SCHEMA_PATH, "Actuator")
            config = {
                "address": int(A("10.1.0.5")),
                "prefixLen": 24,
                "leaseTime": 600,
                "routers": [int(A("10.1.0.1"))],
                "stateBlob": b"blob-1",
            }
            await client.applyLease(config=config)
            try:
                await client.applyLease(config={**config, "domain": "$(reboot)"})
            except capnp.KjException as exc:
                refused = str(exc)
            else:
                refused = ""
            blob = (await client.loadState()).blob
            return blob, refused
        finally:
            server.cancel()
            act.net.close()

    blob, refused = rpc.run_async(main, None)
    assert blob == b"blob-1"
    assert "not a host name" in refused
    assert net.address_set() == {"10.1.0.5/24"}
