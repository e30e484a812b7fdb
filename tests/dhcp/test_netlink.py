"""The rtnetlink codec (`_netlink`) and `NetConfig` over it.

Codec tests run on replies captured from a 6.x kernel (a veth `pa0`, ifindex 3,
with 10.1.0.5/24 valid for 600 s and a `proto dhcp` default route; the socket
had NETLINK_EXT_ACK and NETLINK_CAP_ACK on). Whatever bytes come back, parsing
gives a result or NetlinkFailed, nothing else. The kernel tests at the end talk
to a real namespace through a socket opened inside it, as the actuator does.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import IPv4Address as A
from ipaddress import IPv4Interface, IPv4Network
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netns_helpers import netlink_socket_in, veth_netns

from privsep.services.dhcp import _netlink as nl
from privsep.services.dhcp._netconfig import (
    KernelAddress,
    LinkInfo,
    NetConfig,
    NetlinkFailed,
    Route,
    decode_addresses,
    decode_link,
    decode_routes,
)

# -- captured replies -------------------------------------------------------------

ADDR_DUMP = [
    bytes.fromhex(
        "5400000014000200640000006c7900000218000003000000080001000a010005080002000a010005"
        "080004000a0100ff08000300706130000800080000000000140006005802000058020000cf1e0300"
        "cf1e0300"
    ),
    bytes.fromhex("1400000003000200640000006c79000000000000"),
]
ROUTE_DUMP = [
    bytes.fromhex(
        # main: default via 10.1.0.1 metric 1024 proto dhcp; 10.1.0.0/24 proto kernel
        "3c00000018000200650000006c79000002000000fe1000010000000008000f00fe00000008000600"
        "00040000080005000a01000108000400030000003c00000018000200650000006c79000002180000"
        "fe02fd010000000008000f00fe000000080001000a010000080007000a0100050800040003000000"
        # local table: local 10.1.0.5, broadcast 10.1.0.255
        "3c00000018000200650000006c79000002200000ff02fe020000000008000f00ff00000008000100"
        "0a010005080007000a01000508000400030000003c00000018000200650000006c79000002200000"
        "ff02fd030000000008000f00ff000000080001000a0100ff080007000a0100050800040003000000"
    ),
    bytes.fromhex("1400000003000200650000006c79000000000000"),
]
LINK_REPLY = bytes.fromhex(
    "640400001000000066000000cc02000000000100030000004310010000000000080003007061300008000d00"
    "e803000005001000060000000500110000000000050043000000000008000400dc0500000800320044000000"
    "08003300ffff000008001b000000000008001e000000000008003d000000000008001f000200000008002800"
    "ffff0000080029000000010008003a000000010008003f0000000100080040000000010008003b00f8ff0700"
    "08003c00ffff0000080042000000000008002000020000000500210001000000080023000200000008002f00"
    "0100000008003000010000000600440000000000060045000000000005002700000000000a0001002a80cd93"
    "34ef00000a000200ffffffffffff0000cc001700000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "6400070000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000c002b0005000200000000001000120009000100766574680000000008000500"
    "020000000c0006006e6f717565756500c0011a008c0002008800010000000000000000000000000001000000"
    "0100000001000000010000000000000001000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "10270000e8030000000000000000000000000000000000000100000030010a00080001000000008014000500"
    "ffff0000a93e03002c850000e8030000f40002000000000040000000dc050000010000000100000001000000"
    "01000000ffffffffa00f0000e803000000000000803a09008051010003000000580200001000000000000000"
    "01000000010000000100000060ea000000000000000000000000000000000000000000000000000001000000"
    "000000000000000010270000e803000001000000000000000000000001000000000000000000000001000000"
    "0000000000000000000000000000000080ee3600000000000000000001000000000000000000000000000000"
    "00000000000000000004000000000000ffff0000ffffffff0100000000000000000000000000000014000700"
    "00000000000000000000000000000000050008000000000024000e0000000000000000000000000000000000"
    "0000000000000000000000000000000004003e8004004180"
)
# RTM_NEWLINK IFLA_MTU 70000 on a veth: EINVAL, with the kernel's reason attached.
MTU_ERROR = bytes.fromhex(
    "4800000002000003670000006c790000eaffffff280000001000050067000000000000002400010"
    "06d74752067726561746572207468616e20646576696365206d6178696d756d00"
)
ACK = bytes.fromhex("2400000002000001680000006c7900000000000028000000100005006800000000000000")
CAPTURED = [*ADDR_DUMP, *ROUTE_DUMP, LINK_REPLY, MTU_ERROR, ACK]


def feed(seq: int, expect: nl.Expect, *datagrams: bytes) -> nl.Reply:
    reply = nl.Reply("test op", seq, expect)
    for data in datagrams:
        reply.feed(data)
    return reply


def msg(kind: int, seq: int, body: bytes = b"", flags: int = 0) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def error_msg(seq: int, code: int) -> bytes:
    return msg(nl.NLMSG_ERROR, seq, struct.pack("=i", -code) + msg(16, seq))


# -- the captures decode to what `ip` showed ------------------------------------------


def test_captured_address_dump_gives_address_broadcast_and_lifetimes() -> None:
    reply = feed(100, nl.Expect.DUMP, *ADDR_DUMP)
    assert reply.done and not reply.interrupted
    (address,) = decode_addresses(reply.messages, 3)
    assert address == KernelAddress(IPv4Interface("10.1.0.5/24"), A("10.1.0.255"), 600, 600)
    assert decode_addresses(reply.messages, 4) == ()


def test_captured_route_dump_keeps_main_table_unicast_routes_of_the_interface() -> None:
    reply = feed(101, nl.Expect.DUMP, *ROUTE_DUMP)
    assert len(reply.messages) == 4  # two of them in the local table
    assert decode_routes(reply.messages, 3) == (
        Route(IPv4Network("0.0.0.0/0"), A("10.1.0.1"), 1024),
        Route(IPv4Network("10.1.0.0/24"), None, 0),
    )
    assert decode_routes(reply.messages, 2) == ()


def test_captured_link_reply_gives_name_mtu_and_max_mtu() -> None:
    reply = feed(102, nl.Expect.ONE, LINK_REPLY)
    assert reply.done
    assert decode_link(reply.messages, 3) == LinkInfo(3, "pa0", 1500, 65535)
    with pytest.raises(NetlinkFailed, match="not 4"):
        decode_link(reply.messages, 4)


def test_kernel_error_carries_errno_and_extended_ack_text() -> None:
    with pytest.raises(NetlinkFailed) as info:
        feed(103, nl.Expect.ACK, MTU_ERROR)
    assert info.value.errno == errno.EINVAL
    assert info.value.op == "test op"
    assert str(info.value) == "test op: Invalid argument (mtu greater than device maximum)"


def test_ack_completes_a_change() -> None:
    reply = feed(104, nl.Expect.ACK, ACK)
    assert reply.done and reply.messages == []


# -- the Reply state machine --------------------------------------------------------


def test_other_sequence_numbers_are_ignored_stale_answers_and_notifications() -> None:
    stale = error_msg(6, errno.EEXIST)  # the answer to a request we gave up on
    notification = msg(nl.RTM_NEWADDR, 0, bytes(8))
    reply = feed(7, nl.Expect.ACK, stale, notification)
    assert not reply.done
    reply.feed(msg(nl.NLMSG_NOOP, 7) + error_msg(7, 0))
    assert reply.done


def test_dump_spans_datagrams_until_done_and_flags_an_interrupted_dump() -> None:
    body = bytes(12)
    reply = feed(9, nl.Expect.DUMP, msg(24, 9, body, nl.NLM_F_MULTI) * 3)
    assert not reply.done
    reply.feed(msg(24, 9, body, nl.NLM_F_MULTI | nl.NLM_F_DUMP_INTR))
    reply.feed(msg(nl.NLMSG_DONE, 9, bytes(4), nl.NLM_F_MULTI))
    assert reply.done and reply.interrupted and len(reply.messages) == 4


def test_done_with_an_error_fails_the_dump() -> None:
    with pytest.raises(NetlinkFailed) as info:
        feed(9, nl.Expect.DUMP, msg(nl.NLMSG_DONE, 9, struct.pack("=i", -errno.EMSGSIZE)))
    assert info.value.errno == errno.EMSGSIZE


def test_overrun_is_enobufs() -> None:
    with pytest.raises(NetlinkFailed) as info:
        feed(9, nl.Expect.DUMP, msg(nl.NLMSG_OVERRUN, 9))
    assert info.value.errno == errno.ENOBUFS


def test_one_object_answer_completes_at_the_first_message() -> None:
    reply = feed(5, nl.Expect.ONE, msg(16, 5, bytes(16)) + msg(16, 5, bytes(16)))
    assert reply.done and len(reply.messages) == 1


def test_messages_after_the_end_are_not_taken() -> None:
    reply = feed(5, nl.Expect.ACK, error_msg(5, 0) + error_msg(5, errno.EPERM))
    assert reply.done


@pytest.mark.parametrize("code", [errno.EEXIST, errno.ESRCH, errno.EADDRNOTAVAIL, 4095, 2**31])
def test_error_codes_map_to_netlink_failed_with_that_errno(code: int) -> None:
    body = struct.pack("=I", (-code) & 0xFFFFFFFF) + msg(16, 1)
    with pytest.raises(NetlinkFailed) as info:
        feed(1, nl.Expect.ACK, msg(nl.NLMSG_ERROR, 1, body))
    assert info.value.errno == code


# -- encoding -----------------------------------------------------------------------


def test_attributes_are_padded_to_four_bytes_and_read_back() -> None:
    for size in range(9):
        data = nl.attr(7, bytes(range(size)))
        assert len(data) == (4 + size + 3) & ~3
        assert struct.unpack_from("=HH", data) == (4 + size, 7)
        assert nl.Attrs(data).raw(7) == bytes(range(size))


def test_request_header_and_fixed_bodies_have_the_kernel_layout() -> None:
    data = nl.message(nl.RTM_NEWROUTE, nl.NLM_F_REQUEST | nl.NLM_F_ACK, 42, bytes(12))
    assert struct.unpack("=IHHII", data[:16]) == (28, 24, 5, 42, 0)
    assert nl.ifinfomsg(3) == struct.pack("=BxHiII", 0, 0, 3, 0, 0)
    assert nl.ifaddrmsg(socket.AF_INET, 24, 3) == bytes([2, 24, 0, 0]) + struct.pack("=I", 3)
    route = nl.rtmsg(socket.AF_INET, 16, table=254, proto=16, scope=253, kind=1)
    assert route == bytes([2, 16, 0, 0, 254, 16, 253, 1, 0, 0, 0, 0])
    # ifa_cacheinfo is (preferred, valid, cstamp, tstamp)
    assert nl.cacheinfo(valid=600, preferred=300) == struct.pack("=IIII", 300, 600, 0, 0)


def test_attribute_types_drop_the_nested_and_byteorder_bits() -> None:
    attrs = nl.Attrs(nl.attr(0x8000 | nl.IFLA_MTU, struct.pack("=I", 9000)))
    assert attrs.u32(nl.IFLA_MTU) == 9000


def test_wrong_sized_attributes_are_malformed() -> None:
    attrs = nl.Attrs(nl.attr(nl.RTA_GATEWAY, b"\x0a\x01\x00"))
    with pytest.raises(nl.MalformedReply):
        attrs.ipv4(nl.RTA_GATEWAY)
    with pytest.raises(nl.MalformedReply):
        attrs.u32(nl.RTA_GATEWAY)


# -- hostile replies: a result or NetlinkFailed, nothing else ---------------------------


def parse_all(data: bytes, seq: int, expect: nl.Expect) -> None:
    """Everything NetConfig does with a datagram."""
    try:
        reply = feed(seq, expect, data)
        for decode in (decode_link, decode_addresses, decode_routes):
            with contextlib.suppress(NetlinkFailed):
                decode(reply.messages, 3)
    except NetlinkFailed:
        pass


@pytest.mark.parametrize("index", range(len(CAPTURED)))
def test_every_truncation_of_a_captured_reply_parses_or_fails_cleanly(index: int) -> None:
    data = CAPTURED[index]
    seq = struct.unpack_from("=I", data, 8)[0]
    for expect in nl.Expect:
        for cut in range(len(data)):
            parse_all(data[:cut], seq, expect)
        for junk in (b"\0", b"\xff" * 3, b"\x10\0\0\0" + bytes(12), data):
            parse_all(data + junk, seq, expect)


def test_truncated_messages_are_malformed_not_index_errors() -> None:
    with pytest.raises(nl.MalformedReply, match="message length"):
        feed(100, nl.Expect.DUMP, ADDR_DUMP[0][:40])
    with pytest.raises(nl.MalformedReply, match="stray bytes"):
        feed(100, nl.Expect.DUMP, ADDR_DUMP[0] + b"\0\0")
    short = bytearray(ADDR_DUMP[0])
    short[16 + 8] = 3  # the first attribute claims 3 bytes, less than its own header
    with pytest.raises(nl.MalformedReply, match="attribute length"):
        decode_addresses(feed(100, nl.Expect.DUMP, bytes(short)).messages, 3)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(list(nl.Expect)))
def test_arbitrary_bytes_parse_or_fail_with_netlink_failed(data: bytes, expect: nl.Expect) -> None:
    parse_all(data, 0, expect)
    parse_all(msg(nl.RTM_NEWROUTE, 0, data), 0, expect)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(CAPTURED),
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_captured_replies_with_flipped_bytes_parse_or_fail_cleanly(
    data: bytes, flips: list[tuple[int, int]]
) -> None:
    mutated = bytearray(data)
    for where, value in flips:
        mutated[where % len(mutated)] = value
    seq = struct.unpack_from("=I", data, 8)[0]
    for expect in nl.Expect:
        parse_all(bytes(mutated), seq, expect)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0x3FFF), st.binary(max_size=40)), max_size=12))
def test_attribute_parser_reads_back_what_was_encoded_last_wins(
    attrs: list[tuple[int, bytes]],
) -> None:
    parsed = nl.Attrs(b"".join(nl.attr(kind, payload) for kind, payload in attrs))
    expected = dict(attrs)
    for kind, payload in expected.items():
        assert kind in parsed
        assert parsed.raw(kind) == payload


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 64))
def test_attribute_parser_on_arbitrary_bytes_never_raises_anything_else(
    data: bytes, offset: int
) -> None:
    try:
        attrs = nl.Attrs(data, offset)
    except NetlinkFailed:
        return
    for kind in (1, 2, 3, 4, 6):
        for getter in (attrs.u32, attrs.ipv4, attrs.text, attrs.raw):
            with contextlib.suppress(NetlinkFailed):
                getter(kind)
    with contextlib.suppress(NetlinkFailed):
        attrs.cacheinfo()


def test_importing_netconfig_loads_nothing_outside_the_standard_library() -> None:
    # pyroute2 cost 70-480 ms and 12-16 MiB here: the reason this codec exists.
    code = (
        "import sys; before = set(sys.modules)\n"
        "import privsep.services.dhcp._netconfig, privsep.services.dhcp._actuator\n"
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before}"
        " - set(sys.stdlib_module_names) - {'privsep'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- against the kernel -------------------------------------------------------------

kernel = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")


def ip(ns: str, *args: str) -> str:
    result = subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"ip -n {ns} {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@pytest.fixture
def ns() -> Iterator[tuple[str, int]]:
    """(namespace, ifindex of its veth end pa0 with 10.9.0.2/24, up)."""
    with veth_netns() as (name, ifindex):
        ip(name, "addr", "add", "10.9.0.2/24", "dev", "pa0")
        yield name, ifindex


def with_netconfig(ns: str, body: Any) -> Any:
    async def main() -> Any:
        net = await NetConfig.open(netlink_socket_in(ns).detach())
        try:
            return await body(net)
        finally:
            net.close()

    return asyncio.run(main())


@pytest.mark.lab
@kernel
def test_link_matches_what_ip_shows(ns: tuple[str, int]) -> None:
    name, index = ns
    shown = json.loads(ip(name, "-j", "-d", "link", "show", "dev", "pa0"))[0]
    link = with_netconfig(name, lambda net: net.link(index))
    assert link == LinkInfo(index, "pa0", shown["mtu"], shown["max_mtu"])


@pytest.mark.lab
@kernel
def test_addresses_and_routes_read_back_lifetimes_and_filter_by_interface(
    ns: tuple[str, int],
) -> None:
    name, index = ns
    ip(name, "addr", "add", "10.9.1.2/24", "dev", "pa0", "valid_lft", "300", "preferred_lft", "200")
    ip(name, "addr", "add", "10.8.0.1/24", "dev", "pa1")
    ip(name, "route", "add", "10.50.0.0/16", "via", "10.9.0.1", "metric", "7", "proto", "static")
    ip(name, "route", "add", "10.51.0.0/16", "via", "10.8.0.2")  # other interface
    ip(name, "route", "add", "10.52.0.0/16", "via", "10.9.0.1", "table", "100")

    async def body(net: NetConfig) -> tuple[Any, Any]:
        return await net.addresses(index), await net.routes(index)

    addresses, routes = with_netconfig(name, body)
    by_ip = {a.interface: a for a in addresses}
    assert set(by_ip) == {IPv4Interface("10.9.0.2/24"), IPv4Interface("10.9.1.2/24")}
    forever = by_ip[IPv4Interface("10.9.0.2/24")]
    assert (forever.valid_lft, forever.preferred_lft, forever.broadcast) == (None, None, None)
    timed = by_ip[IPv4Interface("10.9.1.2/24")]
    assert timed.valid_lft is not None and 290 <= timed.valid_lft <= 300
    assert timed.preferred_lft is not None and 190 <= timed.preferred_lft <= 200
    assert set(routes) == {
        Route(IPv4Network("10.9.0.0/24"), None, 0),
        Route(IPv4Network("10.9.1.0/24"), None, 0),
        Route(IPv4Network("10.50.0.0/16"), A("10.9.0.1"), 7),
    }


@pytest.mark.lab
@kernel
def test_changes_show_in_ip_and_kernel_refusals_carry_errno_and_reason(
    ns: tuple[str, int],
) -> None:
    name, index = ns
    ours = Route(IPv4Network("10.60.0.0/16"), A("10.9.0.1"), 1024)
    onlink = Route(IPv4Network("192.0.2.0/24"), None, 1024)

    async def body(net: NetConfig) -> dict[str, int]:
        await net.add_address(index, IPv4Interface("10.9.5.5/24"), A("10.9.5.255"), 600)
        await net.add_route(index, ours)
        await net.add_route(index, onlink)
        await net.set_mtu(index, 1400)
        codes = {}
        for what, call in (
            ("address twice", net.add_address(index, IPv4Interface("10.9.5.5/24"), None, 60)),
            ("route twice", net.add_route(index, ours)),
            ("no such route", net.delete_route(index, Route(ours.destination, None, 5))),
            ("no such address", net.delete_address(index, IPv4Interface("10.7.7.7/24"))),
            ("no such link", net.set_mtu(index + 1000, 1400)),
            ("mtu too big", net.set_mtu(index, 1 << 20)),
        ):
            try:
                await call
            except NetlinkFailed as exc:
                codes[what] = exc.errno
                if what == "mtu too big":
                    assert "greater than device maximum" in str(exc)
        await net.add_route(index, Route(ours.destination, A("10.9.0.3"), 1024), replace=True)
        return codes

    codes = with_netconfig(name, body)
    assert codes == {
        "address twice": errno.EEXIST,
        "route twice": errno.EEXIST,
        "no such route": errno.ESRCH,
        "no such address": errno.EADDRNOTAVAIL,
        "no such link": errno.ENODEV,
        "mtu too big": errno.EINVAL,
    }
    (shown,) = [
        a
        for a in json.loads(ip(name, "-j", "-4", "addr", "show", "dev", "pa0"))[0]["addr_info"]
        if a["local"] == "10.9.5.5"
    ]
    assert (shown["broadcast"], shown["valid_life_time"] <= 600) == ("10.9.5.255", True)
    routes = {
        (r["dst"], r.get("gateway"), r.get("metric"), r.get("protocol"), r.get("scope"))
        for r in json.loads(ip(name, "-j", "-4", "route", "show", "table", "main"))
    }
    assert ("10.60.0.0/16", "10.9.0.3", 1024, "dhcp", None) in routes  # replaced in place
    assert ("192.0.2.0/24", None, 1024, "dhcp", "link") in routes
    assert json.loads(ip(name, "-j", "link", "show", "dev", "pa0"))[0]["mtu"] == 1400


@pytest.mark.lab
@kernel
def test_delete_route_leaves_a_same_key_route_that_is_not_proto_dhcp(ns: tuple[str, int]) -> None:
    name, index = ns
    ip(name, "route", "add", "10.70.0.0/16", "via", "10.9.0.1", "metric", "1024")
    theirs = Route(IPv4Network("10.70.0.0/16"), A("10.9.0.1"), 1024)

    async def body(net: NetConfig) -> int:
        try:
            await net.delete_route(index, theirs)
        except NetlinkFailed as exc:
            return exc.errno
        return 0

    assert with_netconfig(name, body) == errno.ESRCH
    assert "10.70.0.0/16" in ip(name, "-4", "route", "show")


@pytest.mark.lab
@kernel
def test_multi_datagram_dump_is_read_whole_even_after_a_stale_dump_was_left_running(
    ns: tuple[str, int],
) -> None:
    name, index = ns
    count = 3000  # ~190 KiB of RTM_NEWROUTE: several datagrams
    batch = "".join(f"route add 10.{100 + i // 256}.{i % 256}.0/24 dev pa0\n" for i in range(count))
    subprocess.run(["ip", "-n", name, "-batch", "-"], input=batch, text=True, check=True)
    sock = netlink_socket_in(name)
    spare = socket.socket(fileno=os.dup(sock.fileno()))  # same socket, another handle

    async def body(net: NetConfig) -> tuple[int, int]:
        first = len(await net.routes(index))
        # A dump someone started and abandoned: its first datagram is queued and the
        # kernel refuses a new dump (EBUSY) until this one is read to its end.
        spare.send(nl.message(nl.RTM_GETROUTE, nl.NLM_F_REQUEST | nl.NLM_F_DUMP, 1, nl.rtmsg(2, 0)))
        return first, len(await net.routes(index))

    async def main() -> tuple[int, int]:
        net = await NetConfig.open(sock.detach())
        try:
            return await body(net)
        finally:
            net.close()
            spare.close()

    first, second = asyncio.run(main())
    assert first == second == count + 1  # and 10.9.0.0/24 of the fixture


@pytest.mark.lab
@kernel
def test_a_queued_stale_answer_with_the_next_sequence_number_is_not_taken(
    ns: tuple[str, int],
) -> None:
    # As after a cancelled request, or one of an earlier owner of the socket that
    # used the same numbers: an ENODEV waits in the queue, numbered as our next.
    name, index = ns
    sock = netlink_socket_in(name)
    spare = socket.socket(fileno=os.dup(sock.fileno()))

    async def main() -> LinkInfo:
        net = await NetConfig.open(sock.detach())
        try:
            stale = nl.ifinfomsg(index + 1000) + nl.attr_u32(nl.IFLA_MTU, 1400)
            flags = nl.NLM_F_REQUEST | nl.NLM_F_ACK
            spare.send(nl.message(nl.RTM_NEWLINK, flags, net._seq + 1, stale))
            return await net.link(index)
        finally:
            net.close()
            spare.close()

    assert asyncio.run(main()).name == "pa0"


def test_open_refuses_what_is_not_a_socket() -> None:
    read, write = os.pipe()
    try:
        with pytest.raises(NetlinkFailed) as info:
            asyncio.run(NetConfig.open(read))
        assert info.value.errno == errno.ENOTSOCK
    finally:
        os.close(read)
        os.close(write)
