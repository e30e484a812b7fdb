"""udhcpc's hook environment, built from neutral lease facts: exact names and strings."""

from __future__ import annotations

import os
from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privsep.services.dhcp._hookenv import (
    HookEnvError,
    HookEvent,
    LeaseFacts,
    facts_from_lease,
    facts_from_message,
    format_option,
    hook_env,
)
from privsep.services.dhcp._lease import Lease
from privsep.services.dhcp._message import Message
from privsep.services.dhcp._options import ClasslessRoute

A = IPv4Address


def route(dest: str, via: str) -> ClasslessRoute:
    return ClasslessRoute(IPv4Network(dest), A(via))


FULL = LeaseFacts(
    address=A("192.168.77.148"),
    prefix_len=24,
    routers=(A("192.168.77.1"), A("192.168.77.2")),
    dns=(A("192.168.77.1"), A("192.168.77.3")),
    hostname="client-7",
    domain="lab.example",
    mtu=1400,
    broadcast=A("192.168.77.255"),
    ntp=(A("192.168.77.4"),),
    lease_time=120,
    server_id=A("192.168.77.1"),
    search=("lab.example", "corp.example"),
    classless_routes=(route("10.9.0.0/16", "192.168.77.1"), route("0.0.0.0/0", "192.168.77.1")),
    siaddr=A("192.168.77.1"),
    sname=b"bootsrv",
    boot_file=b"pxe.0",
    extra=((53, b"\x05"), (58, b"\x00\x00\x00\x3c"), (59, b"\x00\x00\x00\x69"), (224, b"hi")),
)

TABLE: list[tuple[str, LeaseFacts, dict[str, str]]] = [
    (
        "full_lease",
        FULL,
        {
            "interface": "eth0",
            "ip": "192.168.77.148",
            "siaddr": "192.168.77.1",
            "sname": "bootsrv",
            "boot_file": "pxe.0",
            "subnet": "255.255.255.0",
            "mask": "24",
            "router": "192.168.77.1 192.168.77.2",
            "dns": "192.168.77.1 192.168.77.3",
            "hostname": "client-7",
            "domain": "lab.example",
            "mtu": "1400",
            "broadcast": "192.168.77.255",
            "ntpsrv": "192.168.77.4",
            "lease": "120",
            "serverid": "192.168.77.1",
            "search": "lab.example corp.example",
            "staticroutes": "10.9.0.0/16 192.168.77.1 0.0.0.0/0 192.168.77.1",
            "opt53": "05",
            "opt58": "0000003c",
            "opt59": "00000069",
            "opt224": "6869",
        },
    ),
    (
        "address_only",
        LeaseFacts(address=A("10.0.0.5")),
        {"interface": "eth0", "ip": "10.0.0.5"},
    ),
    (
        "infinite_lease_host_route_relay",
        LeaseFacts(
            address=A("10.1.2.3"),
            prefix_len=32,
            lease_time=0xFFFFFFFF,
            giaddr=A("10.1.0.1"),
        ),
        {
            "interface": "eth0",
            "ip": "10.1.2.3",
            "giaddr": "10.1.0.1",
            "subnet": "255.255.255.255",
            "mask": "32",
            "lease": "4294967295",
        },
    ),
    (
        "hostile_strings_are_sanitized_like_udhcpc",
        LeaseFacts(
            address=A("10.0.0.5"),
            hostname="$(touch /tmp/pwned)",
            domain="-rf",
            search=("ok.example", "$(x).example"),
        ),
        {
            "interface": "eth0",
            "ip": "10.0.0.5",
            "hostname": "bad",
            "domain": "ba",  # "bad" cut to the option length - 1
            "search": "ok.example $(x).example",  # udhcpc does not sanitize 119
        },
    ),
    (
        "extra_options_by_udhcpc_name",
        LeaseFacts(
            address=A("10.0.0.5"),
            extra=(
                (2, (-3600).to_bytes(4, "big", signed=True)),
                (9, bytes([10, 0, 0, 9])),
                (13, (1234).to_bytes(2, "big")),
                (17, b"/root path"),
                (23, b"\x40"),
                (33, bytes([10, 7, 0, 0, 10, 0, 0, 1])),
                (40, b"nis-dom"),
                (56, b"msg with space"),
                (66, b"tftp.example\x00"),
                (249, bytes([16, 10, 8, 10, 0, 0, 1])),
                (252, b"http://wpad/x"),
            ),
        ),
        {
            "interface": "eth0",
            "ip": "10.0.0.5",
            "timezone": "4294963696",
            "lprsrv": "10.0.0.9",
            "bootsize": "1234",
            "rootpath": "/root path",
            "ipttl": "64",
            "routes": "10.7.0.0/10.0.0.1",
            "nisdomain": "nis-dom",
            "message": "msg with space",
            "tftp": "tftp.example",
            "msstaticroutes": "10.8.0.0/16 10.0.0.1",
            "wpad": "http://wpad/x",
        },
    ),
]


@pytest.mark.parametrize(("name", "facts", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_bound_environment(name: str, facts: LeaseFacts, expected: dict[str, str]) -> None:
    assert hook_env(HookEvent.BOUND, "eth0", facts) == expected


@pytest.mark.parametrize(
    ("code", "payload", "expected"),
    [
        (3, bytes([10, 0, 0, 1, 10, 0, 0, 2, 10]), ("router", "10.0.0.1 10.0.0.2")),  # tail ignored
        (51, b"\x00\x01", ("lease", "")),  # too short for its type: empty value
        (26, b"\x05\xdc\x05\x78", ("mtu", "1500 1400")),  # a repeated number
        (12, b"ab", ("hostname", "ab")),
        (12, b"a b", ("hostname", "ba")),
        (12, b"a\xff", ("hostname", "b")),
        (12, b"", ("hostname", "")),
        (12, b"host\x00junk", ("hostname", "host")),
        (17, b"caf\xc3\xa9", ("rootpath", "café")),
        (
            119,
            bytes([3]) + b"lab" + bytes([7]) + b"example\x00" + b"\x04corp\xc0\x04",
            (
                "search",
                "lab.example corp.example",
            ),
        ),
        (119, b"\xc0\x00", ("search", "")),  # a pointer loop: empty, as udhcpc
        (119, b"\x05ab", ("search", "")),  # label past the end
        (120, b"\x01" + bytes([10, 0, 0, 7, 10, 0, 0, 8]), ("sipsrv", "10.0.0.7 10.0.0.8")),
        (120, b"\x00\x03sip\x07example\x00", ("sipsrv", "sip.example")),
        (120, b"\x02abc", ("sipsrv", "")),
        (121, bytes([0, 10, 0, 0, 1]), ("staticroutes", "0.0.0.0/0 10.0.0.1")),
        (121, bytes([12, 10, 17, 10, 0, 0, 1]), ("staticroutes", "10.17.0.0/12 10.0.0.1")),
        (121, bytes([33, 10, 0, 0, 1]), ("staticroutes", "")),
        (
            212,
            bytes([14, 32]) + bytes.fromhex("20010db8" + "00" * 12) + bytes([192, 0, 2, 1]),
            ("ip6rd", "14 32 2001:0db8:0000:0000:0000:0000:0000:0000 192.0.2.1"),
        ),
        (212, bytes(10), ("ip6rd", "")),
        (132, b"\x00\x2a", ("vlanid", "42")),
        (53, b"\x05", ("opt53", "05")),
        (61, b"\x01\x02\x77\x00\x00\x00\x10", ("opt61", "01027700000010")),
        (250, b"", ("opt250", "")),
    ],
)
def test_format_option(code: int, payload: bytes, expected: tuple[str, str]) -> None:
    assert format_option(code, payload) == expected


def test_subnet_mask_not_contiguous_gives_udhcpc_mask_and_stays_raw() -> None:
    message = Message(
        op=2, xid=1, chaddr=bytes(6), yiaddr=A("10.0.0.5"), options=((1, bytes([255, 0, 255, 0])),)
    )
    facts = facts_from_message(message)
    assert facts.prefix_len is None
    env = hook_env(HookEvent.BOUND, "eth0", facts)
    assert (env["subnet"], env["mask"]) == ("255.0.255.0", "24")


def test_non_utf8_bytes_survive_to_the_exact_bytes() -> None:
    facts = LeaseFacts(address=A("10.0.0.5"), extra=((17, b"/x\xff\xfe"),))
    value = hook_env(HookEvent.BOUND, "eth0", facts)["rootpath"]
    assert os.fsencode(value) == b"/x\xff\xfe"


@pytest.mark.parametrize("event", [HookEvent.DECONFIG, HookEvent.LEASEFAIL])
def test_deconfig_and_leasefail_get_the_interface_only(event: HookEvent) -> None:
    assert hook_env(event, "wlan0") == {"interface": "wlan0"}
    with pytest.raises(HookEnvError, match="no lease"):
        hook_env(event, "wlan0", FULL)


def test_nak_exports_the_nak_itself() -> None:
    nak = Message(
        op=2,
        xid=1,
        chaddr=bytes(6),
        options=((53, b"\x06"), (54, bytes([10, 0, 0, 1])), (56, b"address not available")),
    )
    assert hook_env(HookEvent.NAK, "eth0", facts_from_message(nak)) == {
        "interface": "eth0",
        "ip": "0.0.0.0",
        "opt53": "06",
        "serverid": "10.0.0.1",
        "message": "address not available",
    }


@pytest.mark.parametrize("event", [HookEvent.BOUND, HookEvent.RENEW, HookEvent.NAK])
def test_bound_renew_nak_need_facts(event: HookEvent) -> None:
    with pytest.raises(HookEnvError, match="needs the facts"):
        hook_env(event, "eth0")


def test_event_names_are_udhcpcs() -> None:
    assert [e.value for e in HookEvent] == ["deconfig", "bound", "renew", "leasefail", "nak"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mtu": 1400, "extra": ((26, b"\x05\x78"),)}, "option 26 given twice"),
        ({"extra": ((1, b"x"), (1, b"y"))}, "option 1 given twice"),
        ({"extra": ((0, b""),)}, "code 1..254"),
        ({"hostname": "a\x00b"}, "NUL"),
        ({"prefix_len": 33}, "prefix_len"),
    ],
)
def test_bad_facts_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(HookEnvError, match=match):
        LeaseFacts(address=A("10.0.0.5"), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "eth0=x", "eth\x000"])
def test_bad_interface_name_is_refused(name: str) -> None:
    with pytest.raises(HookEnvError, match="interface"):
        hook_env(HookEvent.DECONFIG, name)


def test_facts_from_the_engines_lease() -> None:
    lease = Lease(
        address=A("192.168.77.148"),
        prefix_len=24,
        server_id=A("192.168.77.1"),
        server_mac=bytes.fromhex("027700000001"),
        lease_time=120,
        t1=60.0,
        t2=105.0,
        acquired_at=0.0,
        routers=(A("192.168.77.1"),),
        dns=(A("192.168.77.1"),),
        domain="lab.example",
        extra=((58, b"\x00\x00\x00\x3c"), (224, b"hi")),
    )
    assert hook_env(HookEvent.RENEW, "eth0", facts_from_lease(lease)) == {
        "interface": "eth0",
        "ip": "192.168.77.148",
        "subnet": "255.255.255.0",
        "mask": "24",
        "router": "192.168.77.1",
        "dns": "192.168.77.1",
        "domain": "lab.example",
        "lease": "120",
        "serverid": "192.168.77.1",
        "opt58": "0000003c",
        "opt224": "6869",
    }


def test_lease_with_classless_routes_keeps_a_raw_router_option_from_extra() -> None:
    lease = Lease(
        address=A("10.0.0.5"),
        prefix_len=8,
        server_id=A("10.0.0.1"),
        server_mac=bytes.fromhex("027700000001"),
        lease_time=0xFFFFFFFF,
        t1=None,
        t2=None,
        acquired_at=0.0,
        classless_routes=(route("0.0.0.0/0", "10.0.0.1"),),
        extra=((3, bytes([10, 0, 0, 254])),),
    )
    env = hook_env(HookEvent.BOUND, "eth0", facts_from_lease(lease))
    assert (env["router"], env["staticroutes"], env["lease"]) == (
        "10.0.0.254",
        "0.0.0.0/0 10.0.0.1",
        "4294967295",
    )


@settings(max_examples=300, deadline=None)
@given(code=st.integers(1, 254), payload=st.binary(max_size=300))
def test_any_option_formats_to_a_nul_free_string(code: int, payload: bytes) -> None:
    name, value = format_option(code, payload)
    assert name and "\x00" not in value
    os.fsencode(value)  # representable in an environment
