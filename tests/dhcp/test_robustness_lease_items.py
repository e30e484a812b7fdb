"""One unusable DNS server, router or route costs only itself, never the lease.

QA: a server offering DNS servers [10.99.0.1, 169.254.0.1] got no address at all: the
actuator refused the whole request (`DNS server 169.254.0.1 is link-local`), the engine
logged `apply-failed`. (A link-local DNS server is allowed since: GCE hands one out.)
The engine now asks only for what the actuator takes (`_proc_engine.usable`, with the
rules of `_lease` that the actuator's `validate` uses too), logs what it left out, and
the actuator still refuses such values when they do come (it trusts nothing).
"""

from __future__ import annotations

import asyncio
import logging
from ipaddress import IPv4Address as A
from ipaddress import IPv4Network as N
from typing import Any

import pytest
from engine_helpers import EngineLog, make_lease
from hypothesis import given, settings
from hypothesis import strategies as st

from privsep import rpc
from privsep.services.dhcp import _actuator, _lease
from privsep.services.dhcp._actuator import (
    SCHEMA_PATH,
    ActuatorRejected,
    Configuration,
    Limits,
    configuration_from_message,
    validate,
)
from privsep.services.dhcp._events import LeaseAcquired
from privsep.services.dhcp._hookenv import HookEvent
from privsep.services.dhcp._lease import Lease
from privsep.services.dhcp._options import ClasslessRoute
from privsep.services.dhcp._proc_engine import Driver, configuration, usable

# make_lease(): 192.0.2.10/24 from 192.0.2.1.
OURS = A("192.0.2.10")
UNUSABLE = {
    "127.0.0.1": "loopback",
    "0.0.0.0": "0.0.0.0/8",
    "0.1.2.3": "0.0.0.0/8",
    "224.0.0.1": "multicast",
    "255.255.255.255": "limited broadcast",
    "240.0.0.1": "reserved",
}


def sent_to_actuator(lease: Lease) -> Configuration:
    """The Configuration the actuator reads from what dhcp-engine sends for `lease`."""
    schema = rpc.load_schema(SCHEMA_PATH)  # through the cache: a second load aborts pycapnp
    message = schema.Configuration.new_message(**configuration(lease, HookEvent.BOUND, "eth0"))
    return configuration_from_message(message.as_reader(), Limits())


def planned(lease: Lease) -> Any:
    return validate(sent_to_actuator(lease), ifindex=3, limits=Limits())


def test_qa_repro_a_loopback_dns_server_is_left_out_and_the_lease_applies() -> None:
    lease = make_lease(dns=(A("10.99.0.1"), A("127.0.0.1")))
    plan = planned(lease)
    assert plan.dns == (A("10.99.0.1"),)
    assert str(plan.address) == "192.0.2.10/24"
    kept = usable(lease)
    assert kept.dns == [A("10.99.0.1")]
    assert list(kept.dropped) == ["dns"]
    assert "loopback" in kept.dropped["dns"]["127.0.0.1"]
    # The actuator itself still refuses it when asked (it trusts nothing).
    raw = Configuration(address=OURS, prefix_len=24, lease_time=600, dns=lease.dns)
    with pytest.raises(ActuatorRejected, match=r"DNS server 127\.0\.0\.1 is loopback"):
        validate(raw, ifindex=3, limits=Limits())


def test_a_link_local_dns_server_is_kept_as_clouds_hand_one_out() -> None:
    lease = make_lease(dns=(A("169.254.169.254"),))  # GCE's metadata server resolves
    assert planned(lease).dns == (A("169.254.169.254"),)
    assert not usable(lease).dropped


@pytest.mark.parametrize(("server", "why"), UNUSABLE.items())
def test_every_dns_server_the_actuator_refuses_is_left_out(server: str, why: str) -> None:
    lease = make_lease(dns=(A(server), A("192.0.2.53")))
    assert planned(lease).dns == (A("192.0.2.53"),)
    assert why in usable(lease).dropped["dns"][server]
    with pytest.raises(ActuatorRejected, match=why):
        validate(
            Configuration(address=OURS, prefix_len=24, lease_time=600, dns=(A(server),)),
            ifindex=3,
            limits=Limits(),
        )


def test_only_dns_servers_that_are_all_unusable_give_a_lease_without_dns() -> None:
    lease = make_lease(dns=tuple(A(a) for a in UNUSABLE))
    plan = planned(lease)
    assert plan.dns == ()
    assert len(usable(lease).dropped["dns"]) == len(UNUSABLE)


def test_more_dns_servers_than_resolv_conf_takes_keep_the_first_eight() -> None:
    servers = tuple(A(f"10.1.0.{i}") for i in range(1, 13))
    lease = make_lease(dns=(servers[0], *servers))  # a repeat is dropped silently
    kept = usable(lease)
    assert kept.dns == list(servers[:8])
    assert set(kept.dropped["dns"]) == {str(s) for s in servers[8:]}
    assert planned(lease).dns == servers[:8]


def test_routers_the_actuator_refuses_are_left_out_one_by_one() -> None:
    good = tuple(A(f"192.0.2.{i}") for i in range(1, 10))  # nine: one too many
    bad = (A("169.254.1.1"), OURS, A("192.0.2.0"), A("192.0.2.255"), A("0.1.2.3"))
    lease = make_lease(routers=(*bad[:2], *good, good[0], *bad[2:]))
    kept = usable(lease)
    assert kept.routers == list(good[:8])
    dropped = kept.dropped["routers"]
    assert "link-local" in dropped["169.254.1.1"]
    assert "our own address" in dropped[str(OURS)]
    assert "network or broadcast" in dropped["192.0.2.0"]
    assert "network or broadcast" in dropped["192.0.2.255"]
    assert "more than 8" in dropped[str(good[8])]
    plan = planned(lease)
    assert [r.gateway for r in plan.routes] == list(good[:8])


def test_classless_routes_the_actuator_refuses_are_left_out_one_by_one() -> None:
    ok = ClasslessRoute(N("10.9.0.0/16"), A("192.0.2.1"))
    on_link = ClasslessRoute(N("198.51.100.0/24"), A("0.0.0.0"))
    routes = (
        ClasslessRoute(N("127.0.0.0/8"), A("192.0.2.1")),  # to loopback
        ClasslessRoute(N("10.8.0.0/16"), A("169.254.1.1")),  # via link-local
        ClasslessRoute(N("10.7.0.0/16"), OURS),  # via ourselves
        ok,
        ClasslessRoute(N("10.9.0.0/16"), A("192.0.2.2")),  # the same destination again
        ok,  # repeated: harmless, dropped silently
        on_link,
        ClasslessRoute(N("0.0.0.0/1"), A("192.0.2.1")),  # TunnelVision
        *(ClasslessRoute(N(f"172.16.{i}.0/24"), A("192.0.2.1")) for i in range(70)),
    )
    lease = make_lease(routers=(), classless_routes=routes)
    kept = usable(lease)
    assert kept.routes[:2] == [ok, on_link] and len(kept.routes) == 64
    dropped = kept.dropped["routes"]
    assert "loopback" in dropped["127.0.0.0/8 via 192.0.2.1"]
    assert "link-local" in dropped["10.8.0.0/16 via 169.254.1.1"]
    assert "our own address" in dropped[f"10.7.0.0/16 via {OURS}"]
    assert "another route" in dropped["10.9.0.0/16 via 192.0.2.2"]
    assert "TunnelVision" in dropped["0.0.0.0/1 via 192.0.2.1"]
    assert len([w for w in dropped.values() if "more than 64" in w]) == 70 - 62
    plan = planned(lease)
    assert len({r.destination for r in plan.routes}) == 64


def test_a_broadcast_address_that_does_not_go_with_the_subnet_is_left_out() -> None:
    lease = make_lease(broadcast=A("255.255.255.255"))
    assert usable(lease).dropped == {
        "broadcast": {"255.255.255.255": "does not go with 192.0.2.10/24"}
    }
    assert planned(lease).broadcast == A("192.0.2.255")
    assert usable(make_lease(broadcast=A("192.0.2.255"))).broadcast == A("192.0.2.255")
    slash_32 = make_lease(prefix_len=32, routers=(), broadcast=A("192.0.2.255"))
    assert planned(slash_32).broadcast is None


def test_engine_and_actuator_share_one_rule() -> None:
    assert _actuator.host_problem is _lease.host_problem
    assert _actuator.router_problem is _lease.router_problem
    assert _actuator.destination_problem is _lease.destination_problem
    limits = Limits()
    assert (limits.max_routers, limits.max_routes, limits.max_name) == (
        _lease.MAX_ROUTERS,
        _lease.MAX_ROUTES,
        _lease.MAX_NAME,
    )


_POOL = [
    *(A(a) for a in UNUSABLE),
    OURS,
    A("192.0.2.0"),
    A("192.0.2.255"),
    A("192.0.2.1"),
    A("192.0.2.11"),
    A("10.1.0.53"),
    A("198.51.100.7"),
]
_NETWORKS = [
    N(n)
    for n in (
        "0.0.0.0/0",
        "0.0.0.0/1",
        "128.0.0.0/1",
        "10.0.0.0/8",
        "10.9.0.0/16",
        "127.0.0.0/8",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "192.0.2.0/24",
        "192.0.2.1/32",
        "169.254.0.0/16",
    )
]
_ADDRESSES = st.sampled_from(_POOL)


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from([8, 16, 24, 30, 31, 32]),
    routers=st.lists(_ADDRESSES, max_size=12),
    dns=st.lists(_ADDRESSES, max_size=12),
    routes=st.lists(
        st.builds(ClasslessRoute, st.sampled_from(_NETWORKS), st.sampled_from([*_POOL, A(0)])),
        max_size=70,
    ),
    broadcast=st.none() | _ADDRESSES,
    # Not host names, too long for the actuator (253 characters, a final dot too), too
    # many or too long together for resolv.conf (6 names, 256 characters).
    domain=st.sampled_from([None, "ok.example", "a_b", "x" * 250 + ".org", "x" * 249 + ".org."]),
    search=st.lists(
        st.sampled_from(["ok.example", "a_b.example", "y" * 50 + "." + "z" * 50, "s.example"]),
        max_size=9,
    ),
)
def test_whatever_the_lease_holds_the_actuator_takes_what_the_engine_sends(
    *,
    prefix: int,
    routers: list[A],
    dns: list[A],
    routes: list[ClasslessRoute],
    broadcast: A | None,
    domain: str | None,
    search: list[str],
) -> None:
    lease = make_lease(
        prefix_len=prefix,
        routers=tuple(routers),
        dns=tuple(dns),
        classless_routes=tuple(routes),
        broadcast=broadcast,
        domain=domain,
        search=tuple(search),
    )
    planned(lease)  # never ActuatorRejected


# -- dhcp-engine logs what it left out -----------------------------------------------------


class _Actuator:
    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []

    async def applyLease(self, config: dict[str, Any]) -> None:
        self.applied.append(config)


def test_dhcp_engine_warns_dns_dropped_and_applies_the_rest(engine_log: EngineLog) -> None:
    lease = make_lease(dns=(A("10.99.0.1"), A("127.0.0.1")))
    actuator = _Actuator()
    driver = Driver(None, None, actuator, {"interface": "eth0"}, fresh=False)  # type: ignore[arg-type]
    asyncio.run(driver._act(LeaseAcquired(lease)))
    [config] = actuator.applied
    assert config["dns"] == [int(A("10.99.0.1"))]
    [warning] = [r for r in engine_log.records if r.getMessage() == "dns-dropped"]
    assert warning.levelno == logging.WARNING
    assert list(warning.fields["dropped"]) == ["127.0.0.1"]  # type: ignore[attr-defined]
    assert not [r for r in engine_log.records if r.getMessage() == "apply-failed"]
