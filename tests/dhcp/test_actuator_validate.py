"""The actuator's policy as a pure function: what `validate` turns a request into.

(The kernel tests in test_actuator_kernel.py check that rejected requests leave
the interface untouched; these check the Plan itself, with no kernel.)
"""

from __future__ import annotations

import sys
from ipaddress import IPv4Address as A
from ipaddress import IPv4Interface, IPv4Network
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from privsep.services.dhcp._actuator import (
    INFINITE,
    ActuatorRejected,
    Applied,
    Configuration,
    Limits,
    RouteRequest,
    validate,
)
from privsep.services.dhcp._netconfig import Route

LIMITS = Limits()
N = IPv4Network


def config(**overrides: Any) -> Configuration:
    base: dict[str, Any] = {
        "address": A("10.1.0.5"),
        "prefix_len": 24,
        "routers": (A("10.1.0.1"),),
        "lease_time": 600,
    }
    return Configuration(**{**base, **overrides})


def plan_of(**overrides: Any) -> Any:
    return validate(config(**overrides), ifindex=3, limits=LIMITS)


def test_plain_lease_plans_address_derived_broadcast_and_default_route() -> None:
    plan = plan_of()
    assert plan.ifindex == 3
    assert plan.address == IPv4Interface("10.1.0.5/24")
    assert plan.broadcast == A("10.1.0.255")
    assert plan.routes == (Route(N("0.0.0.0/0"), A("10.1.0.1"), 1024),)
    assert plan.lifetime == 600


def test_several_routers_get_increasing_metrics() -> None:
    plan = plan_of(routers=(A("10.1.0.1"), A("10.1.0.2")))
    assert [(r.gateway, r.metric) for r in plan.routes] == [
        (A("10.1.0.1"), 1024),
        (A("10.1.0.2"), 1025),
    ]


def test_classless_routes_replace_option_3_per_rfc_3442() -> None:
    plan = plan_of(
        routers=(A("10.1.0.99"),),
        routes=(RouteRequest(A("10.9.0.0"), 16, A("10.1.0.2")),),
    )
    assert plan.routes == (Route(N("10.9.0.0/16"), A("10.1.0.2"), 1024),)


def test_off_subnet_gateway_gets_an_on_link_host_route_before_its_users() -> None:
    plan = plan_of(routes=(RouteRequest(A("10.9.0.0"), 16, A("192.0.2.1")),))
    assert plan.routes == (
        Route(N("192.0.2.1/32"), None, 1024),
        Route(N("10.9.0.0/16"), A("192.0.2.1"), 1024),
    )


def test_slash_32_has_no_broadcast_and_reaches_its_router_on_link() -> None:
    plan = plan_of(address=A("100.64.7.9"), prefix_len=32, routers=(A("100.64.0.1"),))
    assert plan.broadcast is None
    assert plan.routes[0] == Route(N("100.64.0.1/32"), None, 1024)


def test_slash_31_is_valid_without_broadcast() -> None:
    plan = plan_of(address=A("10.1.0.4"), prefix_len=31, routers=(A("10.1.0.5"),))
    assert plan.broadcast is None
    assert plan.routes == (Route(N("0.0.0.0/0"), A("10.1.0.5"), 1024),)


def test_explicit_broadcast_equal_to_derived_is_accepted() -> None:
    assert plan_of(broadcast=A("10.1.0.255")).broadcast == A("10.1.0.255")


def test_infinite_lease_has_no_lifetime() -> None:
    assert plan_of(lease_time=INFINITE).lifetime is None


def test_repeated_dns_servers_are_dropped_not_rejected() -> None:
    plan = plan_of(dns=(A("10.1.0.53"), A("10.1.0.53"), A("10.1.0.54")))
    assert plan.dns == (A("10.1.0.53"), A("10.1.0.54"))


def test_trailing_dot_domain_is_a_host_name() -> None:
    assert plan_of(domain="example.org.").domain == "example.org."


@pytest.mark.parametrize(
    "name",
    [
        "a_b.org",
        "-lead.org",
        "trail-.org",
        "a..b",
        ".lead",
        "é.org",
        "a\x00b",
        "() { :; };",
        "`id`",
        "a'b",
        'a"b',
        "a\\b",
        "a\tb",
        "a\rb",
    ],
)
def test_names_outside_hostname_characters_are_rejected(name: str) -> None:
    with pytest.raises(ActuatorRejected, match="not a host name"):
        plan_of(domain=name)


def test_mtu_bound_follows_the_link() -> None:
    # Over the link's maximum: left as it is, the lease still applies (a jumbo MTU
    # offered to a 1500-byte NIC must not cost the address). Under 68: refused.
    limits = Limits(max_mtu=1500)
    assert validate(config(mtu=9000), ifindex=3, limits=limits).mtu is None
    assert validate(config(mtu=1500), ifindex=3, limits=limits).mtu == 1500
    assert validate(config(mtu=68), ifindex=3, limits=limits).mtu == 68
    with pytest.raises(ActuatorRejected, match=r"MTU 67 out of 68\.\.1500"):
        validate(config(mtu=67), ifindex=3, limits=limits)


def test_rejection_is_one_line() -> None:
    with pytest.raises(ActuatorRejected) as info:
        plan_of(search=("evil\nnameserver 6.6.6.6",))
    assert "\n" not in str(info.value)


@given(
    address=st.integers(0, 2**32 - 1),
    prefix=st.integers(0, 40),
    routers=st.lists(st.integers(0, 2**32 - 1), max_size=10),
    routes=st.lists(
        st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 40), st.integers(0, 2**32 - 1)),
        max_size=5,
    ),
    lease_time=st.integers(0, 2**32),
)
def test_any_request_gives_a_plan_or_a_rejection(
    address: int,
    prefix: int,
    routers: list[int],
    routes: list[tuple[int, int, int]],
    lease_time: int,
) -> None:
    raw = Configuration(
        address=A(address),
        prefix_len=prefix,
        routers=tuple(A(r) for r in routers),
        routes=tuple(RouteRequest(A(d), p, A(g)) for d, p, g in routes),
        lease_time=lease_time,
    )
    try:
        plan = validate(raw, ifindex=1, limits=LIMITS)
    except ActuatorRejected:
        return
    # Whatever passed obeys the invariants the kernel code relies on.
    assert 1 <= plan.address.network.prefixlen <= 32
    keys = [r.key for r in plan.routes]
    assert len(keys) == len(set(keys))
    assert all(r.gateway != plan.address.ip for r in plan.routes)
    assert all(r.destination.prefixlen >= 8 or r.destination.prefixlen == 0 for r in plan.routes)


def test_applied_record_round_trips_and_rejects_junk() -> None:
    record = Applied(
        ifindex=3,
        address=IPv4Interface("10.1.0.5/24"),
        broadcast=A("10.1.0.255"),
        routes=(Route(N("0.0.0.0/0"), A("10.1.0.1"), 1024), Route(N("192.0.2.1/32"), None, 1)),
        original_mtu=1500,
        resolv_conf=True,
    )
    assert Applied.from_bytes(record.to_bytes()) == record
    for junk in (b"{}", b"[]", b'{"version": 2}', record.to_bytes().replace(b"3", b'"x"', 1)):
        with pytest.raises((ValueError, TypeError, KeyError)):
            Applied.from_bytes(junk)


def test_validation_does_not_import_pyroute2() -> None:
    # The policy is usable (and testable) without the 24 MiB netlink library.
    assert "privsep.services.dhcp._actuator" in sys.modules
    import subprocess

    code = (
        "import sys, privsep.services.dhcp._actuator as a; "
        "print(any(m.startswith('pyroute2') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
