"""The codec on real exchanges captured from dnsmasq, Kea, ISC dhcpd and udhcpd.

The packets come from tests/data/dhcp/capture.sh (busybox udhcpc and ISC
dhclient as clients). dpkt's independent DHCP parser is the cross-check.
"""

from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import dpkt

from privsep.services.dhcp._decode_json import message_to_json
from privsep.services.dhcp._message import decode_message, encode_message
from privsep.services.dhcp._options import ClasslessRoute, MessageType


def test_captures_cover_every_server_and_message_type(captures: list[Any]) -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for capture in captures:
        seen[capture.server].add(capture.name.rsplit("-", 1)[1])
    assert set(seen) == {"dnsmasq", "kea", "dhcpd", "udhcpd"}
    for server, kinds in seen.items():
        assert {"discover", "offer", "request", "ack", "nak"} <= kinds, server


def test_capture_decodes_to_the_expected_json(capture: Any) -> None:
    assert message_to_json(decode_message(capture.payload)) == capture.expected


def test_capture_re_encodes_to_an_equal_message(capture: Any) -> None:
    message = decode_message(capture.payload)
    assert decode_message(encode_message(message, max_size=1500)) == message


def test_capture_agrees_with_dpkt(capture: Any) -> None:
    ours = decode_message(capture.payload)
    theirs = dpkt.dhcp.DHCP(capture.payload)
    assert (ours.op, ours.htype, ours.hops, ours.xid, ours.secs, ours.flags) == (
        theirs.op,
        theirs.hrd,
        theirs.hops,
        theirs.xid,
        theirs.secs,
        theirs.flags,
    )
    assert (int(ours.ciaddr), int(ours.yiaddr), int(ours.siaddr), int(ours.giaddr)) == (
        theirs.ciaddr,
        theirs.yiaddr,
        theirs.siaddr,
        theirs.giaddr,
    )
    assert ours.chaddr == theirs.chaddr
    assert ours.sname == theirs.sname.rstrip(b"\x00")
    assert ours.file == theirs.file.rstrip(b"\x00")
    joined: dict[int, bytes] = {}
    for code, payload in theirs.opts:  # dpkt does not join repeated codes: do it here
        joined[code] = joined.get(code, b"") + payload
    assert dict(ours.options) == joined
    assert [code for code, _ in ours.options] == list(joined)


def test_every_capture_round_trips_through_the_cli_json_types(capture: Any) -> None:
    # The JSON keeps addresses dotted and the type by name.
    data = capture.expected
    kind = decode_message(capture.payload).message_type
    assert kind is not None
    assert data["message_type"] == kind.name
    assert data["chaddr"] == "02:77:00:00:00:10"


def test_dnsmasq_ack_carries_a_compressed_search_list_and_two_routes(capture_named: Any) -> None:
    capture = capture_named("dnsmasq-04-ack")
    message = decode_message(capture.payload)
    assert b"\xc0" in (message.option(119) or b"")  # really compressed on the wire
    assert message.get(119) == ("example.test", "lab.example.test", "example.org")
    assert message.get(121) == (
        ClasslessRoute(IPv4Network("10.10.0.0/16"), IPv4Address("192.168.77.1")),
        ClasslessRoute(IPv4Network("0.0.0.0/0"), IPv4Address("192.168.77.1")),
    )
    assert message.get(26) == 1400
    assert message.message_type is MessageType.ACK


def test_kea_nak_is_shorter_than_the_bootp_minimum_and_still_decodes(capture_named: Any) -> None:
    capture = capture_named("kea-06-nak")
    assert len(capture.payload) < 300
    assert decode_message(capture.payload).message_type is MessageType.NAK


def test_every_server_sends_the_lease_essentials_in_its_ack(captures: list[Any]) -> None:
    for capture in captures:
        if not capture.name.endswith("-ack"):
            continue
        message = decode_message(capture.payload)
        assert message.get(54) == IPv4Address("192.168.77.1"), capture.name
        assert message.get(51) == 120, capture.name
        assert message.get(1) == IPv4Address("255.255.255.0"), capture.name
        assert message.yiaddr in IPv4Network("192.168.77.0/24"), capture.name
