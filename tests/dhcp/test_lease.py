"""The Lease value: validation at construction, derived times, strict lease file."""

from __future__ import annotations

import contextlib
import json
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

import pytest
from engine_helpers import ADDRESS, SERVER_IP, START, make_lease
from hypothesis import given
from hypothesis import strategies as st

from privsep import PrivsepError
from privsep.services.dhcp._lease import INFINITE, Lease, MalformedLease
from privsep.services.dhcp._options import ClasslessRoute


def test_derived_times_and_interface() -> None:
    lease = make_lease()
    assert lease.interface == IPv4Interface("192.0.2.10/24")
    assert (lease.t1_at, lease.t2_at, lease.expires_at) == (
        START + 1800,
        START + 3150,
        START + 3600,
    )
    assert not lease.infinite


def test_infinite_lease_has_no_times_and_round_trips() -> None:
    lease = make_lease(lease_time=INFINITE, t1=None, t2=None)
    assert lease.infinite and lease.expires_at is None and lease.t1_at is None
    assert lease.t2_at is None
    assert Lease.from_bytes(lease.to_bytes()) == lease


def test_full_lease_round_trips() -> None:
    lease = make_lease(
        classless_routes=(
            ClasslessRoute(IPv4Network("0.0.0.0/0"), SERVER_IP),
            ClasslessRoute(IPv4Network("10.0.0.0/8"), IPv4Address(0)),
        ),
        routers=(),
        domain="example.org",
        search=("a.example", "b.example"),
        hostname="h",
        mtu=1500,
        ntp=(IPv4Address("192.0.2.123"),),
        broadcast=IPv4Address("192.0.2.255"),
        extra=((43, b"\x01"), (252, b"http://wpad/")),
    )
    assert Lease.from_bytes(lease.to_bytes()) == lease


def test_malformed_lease_is_a_privsep_value_error() -> None:
    assert issubclass(MalformedLease, PrivsepError)
    assert issubclass(MalformedLease, ValueError)


@pytest.mark.parametrize(
    "kw",
    [
        {"address": "192.0.2.10"},
        {"address": IPv4Address("127.0.0.1")},
        {"address": IPv4Address("224.0.0.1")},
        {"address": IPv4Address("0.0.0.0")},
        {"address": IPv4Address("255.255.255.255")},
        {"prefix_len": 0},
        {"prefix_len": 33},
        {"prefix_len": True},
        {"server_id": "192.0.2.1"},
        {"server_mac": b"\x00"},
        {"lease_time": 0},
        {"lease_time": INFINITE + 1},
        {"lease_time": 100, "t1": 50.0, "t2": 100.0},
        {"t1": 3200.0},
        {"t1": None},
        {"lease_time": INFINITE},
        {"acquired_at": float("nan")},
        {"acquired_at": "now"},
        {"routers": [SERVER_IP]},
        {"dns": ("192.0.2.53",)},
        {"ntp": (SERVER_IP,) * 256},
        {"classless_routes": (("0.0.0.0/0", SERVER_IP),)},
        {"domain": ""},
        {"domain": "a\x00b"},
        {"hostname": "h" * 1025},
        {"search": ["a"]},
        {"search": ("",)},
        {"mtu": 67},
        {"mtu": 65536},
        {"broadcast": "192.0.2.255"},
        {"extra": ((0, b""),)},
        {"extra": ((43, "x"),)},
        {"extra": ((43, b""), (43, b""))},
        {"extra": ((44, b""), (43, b""))},
        {"extra": [(43, b"")]},
    ],
)
def test_invalid_values_are_rejected_at_construction(kw: dict[str, Any]) -> None:
    with pytest.raises(MalformedLease):
        make_lease(**kw)


def test_from_bytes_rejects_non_bytes() -> None:
    with pytest.raises(MalformedLease):
        Lease.from_bytes("{}")  # type: ignore[arg-type]


def test_lease_file_is_canonical() -> None:
    data = make_lease().to_bytes()
    assert data.endswith(b"}\n") and b'"version": 1' in data
    assert make_lease().to_bytes() == data
    assert str(ADDRESS).encode() in data


printable = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
)


@given(
    hostname=st.none() | printable,
    domain=st.none() | printable,
    search=st.lists(printable, max_size=4).map(tuple),
    extra=st.dictionaries(st.integers(1, 254), st.binary(max_size=20), max_size=5).map(
        lambda d: tuple(sorted(d.items()))
    ),
    acquired_at=st.floats(-1e12, 1e12, allow_nan=False),
)
def test_any_valid_lease_round_trips(
    hostname: str | None,
    domain: str | None,
    search: tuple[str, ...],
    extra: tuple[tuple[int, bytes], ...],
    acquired_at: float,
) -> None:
    lease = make_lease(
        hostname=hostname, domain=domain, search=search, extra=extra, acquired_at=acquired_at
    )
    assert Lease.from_bytes(lease.to_bytes()) == lease


@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_malformed_lease(data: bytes) -> None:
    with contextlib.suppress(MalformedLease):
        Lease.from_bytes(data)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=12), children, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_arbitrary_json_values_parse_or_raise_malformed_lease(value: object) -> None:
    try:
        data = json.dumps(value).encode()
    except ValueError:
        return
    with contextlib.suppress(MalformedLease):
        Lease.from_bytes(data)
