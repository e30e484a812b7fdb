"""Crash recovery of the real `privsep dhcp`: kill -9 one of its processes and watch.

While a lease is valid, a crash of any DHCP process must not take the address off the
interface (the kernel keeps it with its lifetime; the restarted actuator adopts it and
the engine resumes from the saved lease), and must not start a DORA storm.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from lifecycle_helpers import (
    ClientSet,
    RunningClient,
    address_monitor,
    describe,
    dhcp_packets,
    of_type,
    wait_for,
    wait_for_lease_address,
    wait_for_packet,
)

from privsep.testing import Lab

pytestmark = pytest.mark.lab

# After a crash, the restarted engine may revalidate its lease (INIT-REBOOT: REQUEST +
# ACK, perhaps once more) but never runs a new DORA: at most this many DHCP packets.
MAX_PACKETS_AFTER_CRASH = 4
QUIET_WINDOW = 2.0  # seconds watched after the client is BOUND again


def _restarted(client: RunningClient, victim: str, old_pid: int) -> dict[str, Any]:
    return client.wait_for_log(
        lambda e: (
            e.get("event") == "start" and e.get("child") == victim and e.get("pid") != old_pid
        ),
        timeout=10,
        what=f"the supervisor to restart {victim}",
    )


def _bound_again(client: RunningClient, since: float) -> dict[str, Any]:
    return client.wait_for_log(
        lambda e: (
            e.get("process") == "dhcp-engine"
            and e.get("event") == "state"
            and e.get("new") == "BOUND"
            and float(e.get("ts", 0)) > since
        ),
        timeout=10,
        what="the restarted engine to be BOUND",
    )


def _traced(pid: int | None) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    return any(
        line.split()[1:] not in ([], ["0"])
        for line in status.splitlines()
        if line.startswith("TracerPid:")
    )


@pytest.mark.parametrize("victim", ["dhcp-network", "dhcp-engine", "dhcp-actuator"])
def test_kill_9_while_bound_keeps_address_and_resumes_without_dora(lab: Lab, victim: str) -> None:
    node = lab.add_client()
    server = lab.start_server("dnsmasq")  # 120 s lease: no renewal during the test
    with ClientSet(lab) as clients:
        client = clients.privsep(node)
        address = wait_for_lease_address(node, client)
        client.wait_for_hooks(lambda ev: "bound" in ev)
        (lease,) = server.leases()

        with address_monitor(node) as monitor:
            capture = lab.capture()
            pid = client.child_pids()[victim]
            killed_at = time.time()
            os.kill(pid, signal.SIGKILL)
            _restarted(client, victim, pid)
            bound = _bound_again(client, killed_at)
            wait_for(
                lambda: time.time() > float(bound["ts"]) + QUIET_WINDOW,
                timeout=QUIET_WINDOW + 1,
                what="the quiet window",
            )
            packets = dhcp_packets(capture, live=False)

            assert monitor.deleted(address.ip) == [], monitor.text()
        assert node.addresses() == (address,)
        assert not of_type(packets, "DISCOVER"), describe(packets)
        assert len(packets) <= MAX_PACKETS_AFTER_CRASH, describe(packets)
        assert [x.address for x in server.leases()] == [lease.address]  # no second lease
        events = [c.event for c in client.hook_calls()]
        assert "deconfig" not in events[events.index("bound") :], events
        assert client.proc.poll() is None, client.log_tail()


@pytest.mark.parametrize("victim", ["dhcp-network", "dhcp-engine", "dhcp-actuator"])
def test_kill_9_while_requesting_still_ends_bound_without_dora_storm(lab: Lab, victim: str) -> None:
    if shutil.which("strace") is None:
        pytest.skip("needs strace to hold the server's ACK")
    node = lab.add_client()
    server = lab.start_server("dnsmasq")
    assert server.pid is not None
    # Hold dnsmasq's second reply (the ACK) for 3 s: strace delays its second sendmsg,
    # so the client sits in REQUESTING long enough to have `victim` killed there.
    tracer = subprocess.Popen(
        [
            "strace",
            "-qq",
            "-f",
            "-p",
            str(server.pid),
            "-e",
            "trace=sendmsg",
            "-e",
            "inject=sendmsg:delay_enter=3000000:when=2",
            "-o",
            "/dev/null",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _traced(server.pid), timeout=5, what="strace to attach to dnsmasq")
        capture = lab.capture()
        with ClientSet(lab) as clients:
            client = clients.privsep(node)
            request = wait_for_packet(
                capture, lambda p: p.message_type == "REQUEST", timeout=10, what="a REQUEST"
            )
            client.wait_for_log(
                lambda e: e.get("event") == "state" and e.get("new") == "REQUESTING",
                timeout=2,
                what="REQUESTING",
            )
            pid = client.child_pids()[victim]
            killed_at = time.time()
            os.kill(pid, signal.SIGKILL)
            assert not [p for p in dhcp_packets(capture) if p.message_type == "ACK"], (
                "the ACK came before the kill: the REQUESTING window was missed"
            )
            _restarted(client, victim, pid)
            address = wait_for_lease_address(node, client, timeout=15)
            bound = _bound_again(client, killed_at)
            wait_for(
                lambda: time.time() > float(bound["ts"]) + QUIET_WINDOW,
                timeout=QUIET_WINDOW + 1,
                what="the quiet window",
            )
            packets = [p for p in dhcp_packets(capture, live=False) if p.time > killed_at]
            assert client.proc.poll() is None, client.log_tail()
        assert address.ip in {p.yiaddr for p in packets if p.message_type == "ACK"}
        # The held ACK, then at most one fresh exchange (DISCOVER, OFFER, REQUEST, ACK),
        # with one retransmission to spare; and silence once BOUND again.
        assert len(packets) <= 1 + 4 + 1, describe(packets)
        assert len(of_type(packets, "DISCOVER")) <= 2, describe(packets)
        assert not [p for p in packets if p.time > float(bound["ts"])], describe(packets)
        assert request.time < killed_at
    finally:
        tracer.terminate()
        tracer.wait(5)
