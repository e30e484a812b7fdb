"""udhcpc's option flags that shape the DHCPDISCOVER (-C, -o, -O, -F, -x hostname:), checked
on the wire side by side with busybox udhcpc; -H (older udhcpc's hostname flag) and -p."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from lifecycle_helpers import (
    ClientSet,
    DhcpPacket,
    dhcp_packets,
    of_type,
    wait_for_lease_address,
)

from privsep.testing import Lab, Node

pytestmark = pytest.mark.lab

FLAGS = ("-C", "-o", "-O", "3", "-O", "dns", "-F", "box.lab.example", "-x", "hostname:box")
# What both clients put in every DHCPDISCOVER for FLAGS: no client identifier (61), only
# the asked-for options in 55, 81 with flags S and the name in ASCII, and 12.
COMPARED = (12, 55, 61, 81)


def _discover(lab: Lab, node: Node, start: object) -> DhcpPacket:
    capture = lab.capture()
    client = start()  # type: ignore[operator]
    wait_for_lease_address(node, client)  # type: ignore[arg-type]
    client.stop()  # type: ignore[attr-defined]
    mac = node.mac
    (first, *_) = of_type([p for p in dhcp_packets(capture) if p.chaddr == mac], "DISCOVER")
    return first


def test_discover_options_match_busybox_udhcpc_for_the_same_flags(lab: Lab) -> None:
    lab.start_server("kea", lab.server_config())
    node = lab.add_client()
    with ClientSet(lab) as clients:
        reference = _discover(lab, node, lambda: clients.udhcpc(node, "-f", "-q", *FLAGS))
        node.flush()
        ours = _discover(lab, node, lambda: clients.privsep(node, "-q", *FLAGS))
    expected = {
        12: b"box",
        55: bytes((3, 6)),
        81: b"\x01\x00\x00box.lab.example",
    }
    assert {c: reference.options.get(c) for c in COMPARED} == {**expected, 61: None}
    assert {c: ours.options.get(c) for c in COMPARED} == {**expected, 61: None}


def test_without_those_flags_the_defaults_are_sent_and_h_names_the_host(lab: Lab) -> None:
    # The counter-check of the test above: without -C/-o/-F, option 61 and the default
    # option 55 are sent, and no 81. -H is the hostname flag of older udhcpc versions.
    lab.start_server("kea", lab.server_config())
    node = lab.add_client()
    with ClientSet(lab) as clients:
        ours = _discover(lab, node, lambda: clients.privsep(node, "-q", "-H", "box2"))
    assert ours.options.get(61) is not None
    assert len(ours.options.get(55, b"")) > 2
    assert 81 not in ours.options
    assert ours.options.get(12) == b"box2"


def test_pidfile_holds_our_pid_while_running_and_is_removed_at_exit(
    lab: Lab, tmp_path: Path
) -> None:
    lab.start_server("kea", lab.server_config())
    node = lab.add_client()
    pidfile = tmp_path / "udhcpc.eth0.pid"
    with ClientSet(lab) as clients:
        client = clients.privsep(node, "-p", str(pidfile))
        wait_for_lease_address(node, client)
        pid = int(pidfile.read_text())
        assert pid == client.proc.pid  # the process that takes udhcpc's signals
        os.kill(pid, signal.SIGTERM)  # as ifupdown's `kill $(cat PIDFILE)`
        assert client.proc.wait(10) == 0
    assert not pidfile.exists()


def test_pidfile_in_a_missing_directory_is_refused_before_anything_starts(
    lab: Lab, tmp_path: Path
) -> None:
    node = lab.add_client()
    with ClientSet(lab) as clients:
        client = clients.privsep(node, "-p", str(tmp_path / "no" / "such.pid"))
        code = client.proc.wait(10)
    assert code == 2
    assert "-p " in client.log_tail()
