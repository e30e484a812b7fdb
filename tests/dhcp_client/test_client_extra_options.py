"""`privsep dhcp -x OPT:VAL` reads values as busybox udhcpc does: the parser over a table
of udhcpc's own examples, byte for byte, its refusals, and one DHCPDISCOVER compared on
the wire with the real udhcpc's for the same -x items."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lifecycle_helpers import ClientSet, DhcpPacket, dhcp_packets, of_type, wait_for_lease_address

from privsep._cli import CliError
from privsep._cli._dhcp_options import (
    _LISTS,
    OPTIONS,
    extra_options,
    option_code,
    parse_extra,
)
from privsep.services.dhcp._clientparams import config_from_params
from privsep.testing import Lab, Node

PRIVSEP = Path(sys.executable).with_name("privsep")
MAC = b"\x02\x00\x00\x00\x00\x01"

# (-x items, {code: payload}): each checked against busybox udhcpc 1.35's DHCPDISCOVER.
PARSED: list[tuple[list[str], dict[int, bytes]]] = [
    (["mtu:1400"], {26: bytes.fromhex("0578")}),  # a U16, not the hex 14 00
    (["ipttl:64"], {23: b"\x40"}),  # a U8, not the hex 0x64
    (["mtu:0x578"], {26: bytes.fromhex("0578")}),  # C integers: 0x is hex...
    (["ipttl:0100"], {23: b"\x40"}),  # ... and a leading 0 is octal
    (["mtu=1400"], {26: bytes.fromhex("0578")}),  # the name may end at = or a space too
    (["mtu 1400"], {26: bytes.fromhex("0578")}),
    (["MTU:1400"], {26: bytes.fromhex("0578")}),  # names in any case (udhcpc: lower only)
    (["timezone:-3600"], {2: bytes.fromhex("fffff1f0")}),  # S32
    (["lease:3600"], {51: bytes.fromhex("00000e10")}),
    (["lease:0x10"], {51: bytes.fromhex("00000010")}),
    (["reboottime:4294967295"], {211: b"\xff" * 4}),
    (["subnet:255.255.255.0"], {1: bytes.fromhex("ffffff00")}),  # udhcpc's --help example
    (["router:10.0.0.1,10.0.0.2 10.0.0.3"], {3: bytes.fromhex("0a0000010a0000020a000003")}),
    (["dns:1.1.1.1", "dns:8.8.8.8"], {6: bytes.fromhex("0101010108080808")}),  # lists add up
    (["6:01010101", "dns:8.8.8.8"], {6: bytes.fromhex("0101010108080808")}),
    (["routes:10.0.0.1 10.0.0.2"], {33: bytes.fromhex("0a0000010a000002")}),
    (
        ["search:Example.COM b.org."],  # RFC 1035 labels, lower-cased, uncompressed
        {119: b"\x07example\x03com\x00\x01b\x03org\x00"},
    ),
    (
        ["staticroutes:10.0.0.0/8 10.0.0.1,0.0.0.0/0 10.0.0.254"],
        {121: bytes.fromhex("080a0a000001000a0000fe")},
    ),
    (["staticroutes:10.1.2.3/9 1.2.3.4"], {121: bytes.fromhex("090a0101020304")}),  # as given
    (["msstaticroutes:192.168.0.0/16,10.0.0.1"], {249: bytes.fromhex("10c0a80a000001")}),
    (["domain:lab.example"], {15: b"lab.example"}),
    (["hostname:box"], {12: b"box"}),
    (['14:"dumpfile"'], {14: b"dumpfile"}),  # udhcpc's --help example: a numeric code ...
    (['14:"dump file"'], {14: b"dump file"}),  # ... with a quoted string keeps its spaces
    (["14:'dumpfile'"], {14: b"dumpfile"}),
    (["14:0102"], {14: b"\x01\x02"}),  # otherwise hex
    (["14:  0102  "], {14: b"\x01\x02"}),
    (["224:1:2:ff"], {224: b"\x01\x02\xff"}),  # bytes of one digit between colons
    (["14:123"], {14: b"\x12\x03"}),
    (["26:0578"], {26: bytes.fromhex("0578")}),  # a number means hex, whatever the name's type
    (["061:0a000001"], {49: b"\x0a\x00\x00\x01"}),  # the code in C syntax: octal 49
    (["0xfe:00"], {254: b"\x00"}),
    (["12:666f6f"], {12: b"foo"}),
    (["56:" + "61" * 255], {56: b"a" * 255}),  # hex: up to 255 bytes
    (["domain:\udcff\udcfe"], {15: b"\xff\xfe"}),  # argv's own bytes, not UTF-8
    (["mtu:1400", "ipttl:64"], {26: bytes.fromhex("0578"), 23: b"\x40"}),
]


@pytest.mark.parametrize(("items", "expected"), PARSED)
def test_values_are_read_as_udhcpc_reads_them(items: list[str], expected: dict[int, bytes]) -> None:
    assert extra_options(items) == expected


# (-x items, the error line's text): one CliError line where udhcpc would send something
# else than what was written, or nothing.
REFUSED: list[tuple[list[str], str]] = [
    (["lease:abc"], "lease must be seconds"),
    (["lease:4294967296"], "lease must be seconds"),
    (["lease:²"], "lease must be seconds"),
    (["lease:-1"], "lease must be seconds"),
    (["ipttl:300"], "ipttl must be an integer, 0..255"),  # udhcpc sends 44
    (["mtu:70000"], "mtu must be an integer, 0..65535"),  # udhcpc sends 4464
    (["mtu:08"], "mtu must be an integer"),  # not octal, not decimal
    (["mtu:+1"], "mtu must be an integer"),
    (["timezone:0x80000000"], "-2147483648..2147483647"),
    (["mtu:1400,1500"], "mtu takes one value"),  # udhcpc drops the second
    (["hostname:my box"], "hostname takes one value"),  # udhcpc sends "my"
    (["message:hello, world"], 'give 56:"TEXT"'),
    (["rootpath:" + "a" * 255], "longer than 254 bytes"),  # udhcpc cuts it
    (["mtu:1400", "mtu:1500"], "option 26 given twice"),  # udhcpc keeps the first
    (["dns:8.8.8.8", "6:01010101"], "option 6 given twice"),  # hex codes never add up
    (["hostname:a", "12:62"], "option 12 given twice"),
    (["dns:" + " ".join(["10.0.0.1"] * 64)], "over 254 bytes"),  # udhcpc drops the rest
    (["subnet:255.255.255"], "'255.255.255' is not an IPv4 address"),  # inet_aton's forms
    (["router:gw.example"], "not an IPv4 address"),  # udhcpc would ask DNS
    (["router:010.0.0.1"], "not an IPv4 address"),
    (["routes:10.0.0.1"], "needs a second address"),
    (["staticroutes:10.0.0.0/8"], "needs a gateway"),
    (["staticroutes:10.0.0.0 10.0.0.1"], "is not a.b.c.d/n"),
    (["staticroutes:10.0.0.0/33 10.0.0.1"], "is not a.b.c.d/n"),
    (["search:a..example"], "is not a domain name"),
    (["search:" + "a" * 64 + ".example"], "is not a domain name"),
    (["search:.example"], "is not a domain name"),
    (["search:" + ".".join(["a" * 63] * 4)], "longer than 255 bytes"),
    (["sipsrv:10.0.0.1"], "udhcpc cannot write sipsrv"),  # udhcpc ignores the item
    (["ip6rd:0"], "give the bytes as 212:HEX"),
    (["81:zz"], "value must be hex"),
    (["14:01 02"], "value must be hex"),
    (['14:"dumpfile'], "value must be hex"),
    (['14:""'], "empty string"),
    (["14:" + "00" * 256], "value must be hex"),
    (["15:\udcff\udcfe"], "value must be hex"),  # was a UnicodeEncodeError traceback
    (['14:"' + "a" * 255 + '"'], "longer than 254 bytes"),
    (["255:00"], "out of range"),
    (["0:00"], "out of range"),
    (["nosuch:1"], "unknown DHCP option 'nosuch'"),
    (["mtu"], "expected OPT:VAL"),
    (["mtu:"], "expected OPT:VAL"),
    (["14:   "], "expected OPT:VAL"),
    ([""], "expected OPT:VAL"),
    # The engine writes these itself (udhcpc sends them twice; a 61 replaces its own).
    (["0x3d:0100BEEFC0FFEE"], "option 61 is written by the client itself"),
    (["serverid:10.0.0.1"], "option 54 is written by the client itself"),
    (["50:0a000001"], "option 50 is written by the client itself"),
    (["53:01"], "option 53 is written by the client itself"),
    (["80:"], "option 80 is written by the client itself"),
]


@pytest.mark.parametrize(("items", "message"), REFUSED)
def test_values_udhcpc_would_not_send_as_written_are_refused(
    items: list[str], message: str
) -> None:
    with pytest.raises(CliError) as caught:
        extra_options(items)
    assert caught.value.code == 2
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert str(caught.value).isascii()  # argv's bytes are shown as escapes


def test_error_lines_show_the_item_with_escapes() -> None:
    with pytest.raises(CliError, match=r"^-x 15:\\xff\\xfe: value must be hex"):
        extra_options(["15:\udcff\udcfe"])
    with pytest.raises(CliError, match=r"^-x mtu:1\\n: mtu must be an integer"):
        extra_options(["mtu:1\n"])


@pytest.mark.parametrize(("items", "expected"), PARSED)
def test_what_the_parser_accepts_the_engine_takes(
    items: list[str], expected: dict[int, bytes]
) -> None:
    # The layout parameters `privsep dhcp` hands dhcp-engine: the same bytes, and a
    # ClientConfig the engine accepts (non-UTF-8 text is the engine's to refuse).
    hostname, extra = parse_extra(items)
    assert hostname == expected.get(12, b"").decode()
    assert extra == [f"{code}:{value.hex()}" for code, value in expected.items() if code != 12]
    params = {"extra_options": ",".join(extra), "hostname": hostname}
    if expected.get(15) == b"\xff\xfe":
        with pytest.raises(ValueError, match="option 15: string is not UTF-8"):
            config_from_params(params, MAC)
    else:
        config = config_from_params(params, MAC)
        assert dict(config.extra_options) == {c: v for c, v in expected.items() if c != 12}


def test_a_host_name_goes_to_the_hostname_parameter_and_must_be_utf8() -> None:
    assert parse_extra(["hostname:box", "mtu:1400"]) == ("box", ["26:0578"])
    assert parse_extra(["hostname:caf\u00e9"]) == ("caf\u00e9", [])
    assert parse_extra(['12:"two words"']) == ("two words", [])
    assert parse_extra(["hostname:" + "a" * 300])[0] == "a" * 300  # the config's to refuse
    with pytest.raises(CliError, match=r"-x hostname:\\xff: not UTF-8"):
        parse_extra(["12:ff"])


@pytest.mark.parametrize(
    ("name", "code"),
    [("mtu", 26), ("MTU", 26), ("search", 119), ("3", 3), ("0x3d", 61), ("061", 49)],
)
def test_option_codes_by_name_or_c_number(name: str, code: int) -> None:
    assert option_code(name) == code


@pytest.mark.parametrize("name", ["nosuch", "3x", "08", "-1", "+3", " 3", "1_0", "\udcff"])
def test_unknown_option_names_are_refused(name: str) -> None:
    with pytest.raises(CliError, match=r"^unknown DHCP option '"):
        option_code(name)


def test_the_options_udhcpc_lists_take_several_values() -> None:
    # udhcpc's OPTION_LIST flag (busybox common.c), plus 4, 5, 7 (lists in RFC 2132): the
    # options a second -x adds to instead of being refused. The shared table does not
    # say it (the hooks print every address alike), `_dhcp_options` does.
    lists = {code for code, (_, kind) in OPTIONS.items() if kind in _LISTS}
    assert lists == {3, 4, 5, 6, 7, 9, 33, 41, 42, 44, 119, 121, 249}


def test_the_refused_codes_are_the_ones_the_engine_writes() -> None:
    from privsep._cli._dhcp_options import _ENGINE_OWNED
    from privsep.services.dhcp._config import _ENGINE_OWNED as ENGINE

    assert {int(code) for code in ENGINE} - {0, 255} == _ENGINE_OWNED


# ---------------------------------------------------------------- on the wire, in the lab

# udhcpc's --help examples and the values QA compared, one of each type.
WIRE_ITEMS = (
    "mtu:1400",
    "ipttl:64",
    "vlanpriority:010",
    "timezone:-3600",
    "lease:3600",
    "subnet:255.255.255.0",
    "router:10.77.0.1,10.77.0.2",
    "dns:10.77.0.53",
    "dns:10.77.0.54",
    "routes:10.1.0.0 10.77.0.1",
    "search:Lab.Example corp.example.",
    "staticroutes:10.99.0.0/16 10.77.0.1,0.0.0.0/0 10.77.0.1",
    "domain:lab.example",
    '14:"dumpfile"',
    "17:2f726f6f74",
    "hostname:box",
)
WIRE_CODES = (1, 2, 3, 6, 12, 14, 15, 17, 23, 26, 33, 51, 119, 121, 133)


def _discover(lab: Lab, node: Node, start: object) -> DhcpPacket:
    capture = lab.capture()
    client = start()  # type: ignore[operator]
    wait_for_lease_address(node, client)  # type: ignore[arg-type]
    client.stop()  # type: ignore[attr-defined]
    (first, *_) = of_type([p for p in dhcp_packets(capture) if p.chaddr == node.mac], "DISCOVER")
    return first


@pytest.mark.lab
def test_discover_carries_the_same_options_as_busybox_udhcpc_for_the_same_x(lab: Lab) -> None:
    lab.start_server("kea", lab.server_config())
    node = lab.add_client()
    flags = [arg for item in WIRE_ITEMS for arg in ("-x", item)]
    with ClientSet(lab) as clients:
        reference = _discover(lab, node, lambda: clients.udhcpc(node, "-f", "-q", *flags))
        node.flush()
        ours = _discover(lab, node, lambda: clients.privsep(node, "-q", *flags))
    theirs = {code: reference.options.get(code) for code in WIRE_CODES}
    assert theirs == {code: ours.options.get(code) for code in WIRE_CODES}
    assert theirs == extra_options(WIRE_ITEMS)
    assert theirs[26] == bytes.fromhex("0578")  # 1400, where -x sent 14 00 before
    assert theirs[23] == b"\x40"  # 64, where -x sent 0x64


@pytest.mark.lab
@pytest.mark.parametrize(
    ("item", "message"),
    [
        (b"15:\xff\xfe", "-x 15:\\xff\\xfe: value must be hex"),
        (b"domain:\xff\xfe", "option 15: string is not UTF-8"),
        (b"hostname:\xff", "-x hostname:\\xff: not UTF-8"),
        (b"mtu:70000", "mtu must be an integer, 0..65535"),
        (b"0x3d:0100BEEFC0FFEE", "option 61 is written by the client itself"),
    ],
)
def test_bad_x_values_exit_2_with_one_line_and_start_nothing(
    lab: Lab, tmp_path: Path, item: bytes, message: str
) -> None:
    node = lab.add_client()
    state = tmp_path / "state"
    argv = [os.fsencode(PRIVSEP), b"dhcp", node.interface.encode(), b"--netns"]
    argv += [node.netns.encode(), b"--state-dir", os.fsencode(state), b"--resolv-conf"]
    argv += [b"none", b"-x", item]
    result = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    assert result.returncode == 2
    (line,) = result.stderr.decode("ascii").splitlines()  # argv's bytes shown as escapes
    assert line.startswith("error: ")
    assert message in line
    assert not state.exists()
