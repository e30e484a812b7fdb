"""The real `privsep dhcp` when its interface is deleted, or deleted and re-created, and
when a server hands out a DNS server the actuator cannot use.

QA: with the interface deleted and re-created while the client ran, dhcp-network
logged `send-failed [Errno 6] No such device or address` forever and the client
never recovered. Now dhcp-network exits (`interface-gone`), the supervisor restarts
the group on a socket opened by name, and the new interface gets a lease; if the
interface stays away, the restart budget runs out and `privsep dhcp` exits 1.
"""

from __future__ import annotations

import subprocess
import time
from ipaddress import IPv4Address

import pytest
from lifecycle_helpers import (
    ClientSet,
    RunningClient,
    process_tree,
    wait_for,
    wait_for_lease_address,
)

from privsep.testing import Lab, Node

pytestmark = pytest.mark.lab

# The supervisor restarts a process 5 times at most (layout.yaml), backing off from
# 0.1 s to 2 s: a client whose interface stays gone gives up within seconds.
GIVE_UP_WITHIN = 30.0


def ip(netns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", netns, *args], check=True, capture_output=True)


def recreate_interface(lab: Lab, node: Node, port: str, mac: str) -> None:
    """What `Lab.add_client` built for `node`, once more: a veth pair from the lab's
    bridge (port `port`) to `node.interface` in the node's namespace, up."""
    server = lab.server_node.netns
    ip(server, "link", "add", port, "type", "veth", "peer", "name", node.interface)
    ip(server, "link", "set", node.interface, "address", mac, "netns", node.netns)
    for step in (["addrgenmode", "none"], ["master", lab.bridge], ["up"]):
        ip(server, "link", "set", port, *step)
    ip(node.netns, "link", "set", node.interface, "addrgenmode", "none")
    ip(node.netns, "link", "set", node.interface, "up")


def events_named(client: RunningClient, name: str) -> list[dict[str, object]]:
    return [e for e in client.log() if e.get("event") == name]


@pytest.mark.parametrize(
    ("same_mac", "later"),
    [(True, 0.0), (False, 0.0), (True, 1.0)],
    ids=["same-mac", "new-mac", "one-second-later"],
)
def test_interface_recreated_while_bound_gets_a_lease_again(
    lab: Lab, same_mac: bool, later: float
) -> None:
    node = lab.add_client()
    lab.start_server("dnsmasq")
    with ClientSet(lab) as clients:
        client = clients.privsep(node)
        wait_for_lease_address(node, client)
        client.wait_for_log(
            lambda e: e.get("event") == "lease-applied", timeout=5, what="the first lease"
        )
        applied_before = len(events_named(client, "lease-applied"))

        ip(node.netns, "link", "del", node.interface)  # takes its bridge port along
        time.sleep(later)  # meanwhile restarts fail at once: no interface to open
        recreate_interface(lab, node, "vre0", node.mac if same_mac else "02:70:73:aa:bb:cc")

        def leased() -> bool:
            return bool(node.addresses()) and (
                len(events_named(client, "lease-applied")) > applied_before
            )

        wait_for(leased, timeout=20, what="a lease on the new interface")
        [gone] = events_named(client, "interface-gone")
        assert gone["process"] == "dhcp-network" and gone["level"] == "error"
        # Recovered without spinning: a few group restarts (5 at most), then steady.
        restarts = len(events_named(client, "restart"))
        assert 1 <= restarts <= 5, client.log_tail()
        started = len(events_named(client, "start"))
        assert started <= 5 * (1 + restarts), client.log_tail()
        time.sleep(2)
        assert len(events_named(client, "start")) == started, client.log_tail()
        assert client.proc.poll() is None, client.log_tail()
        children = client.child_pids()
        assert len(children) == 5 and all(p in process_tree(client.pid) for p in children.values())
        failed = [e for e in client.log() if e.get("event") in ("send-failed", "recv-failed")]
        assert len(failed) <= 3, failed
        [address] = node.addresses()
        assert address.ip in lab.server_address.network


def test_interface_deleted_for_good_ends_the_client_with_1(lab: Lab) -> None:
    node = lab.add_client()
    lab.start_server("dnsmasq")
    with ClientSet(lab) as clients:
        client = clients.privsep(node)
        wait_for_lease_address(node, client)
        deleted_at = time.monotonic()
        ip(node.netns, "link", "del", node.interface)
        status = client.wait_exit(GIVE_UP_WITHIN)
        took = time.monotonic() - deleted_at
        log = client.log()
    assert status == 1, client.log_tail()
    assert took < GIVE_UP_WITHIN
    assert any(e.get("event") == "interface-gone" for e in log)
    assert any(e.get("event") == "give-up" for e in log)
    # Once a required process gave up, nothing else is started (no engine without its
    # network process, no `sandbox-setup-failed`).
    after = [e.get("event") for e in log[[e.get("event") for e in log].index("give-up") :]]
    assert "start" not in after and "sandbox-setup-failed" not in after, after
    sends = [e for e in log if e.get("event") in ("send-failed", "recv-failed")]
    assert len(sends) <= 3, sends


def test_an_unusable_dns_server_costs_only_itself(lab: Lab) -> None:
    node = lab.add_client()
    good, bad = lab.server_address.ip, IPv4Address("127.0.0.1")
    lab.start_server("dnsmasq", lab.server_config(dns_servers=(good, bad)))
    with ClientSet(lab) as clients:
        client = clients.privsep(node)
        wait_for_lease_address(node, client)
        dropped = client.wait_for_log(
            lambda e: e.get("event") == "dns-dropped", timeout=5, what="dns-dropped"
        )
        client.wait_for_log(
            lambda e: e.get("event") == "lease-applied", timeout=5, what="lease-applied"
        )
        assert not events_named(client, "apply-failed"), client.log_tail()
    assert dropped["level"] == "warning"
    assert list(dropped["dropped"]) == [str(bad)]  # type: ignore[call-overload]
    resolv = (node.directory / "resolv.conf").read_text()
    assert f"nameserver {good}" in resolv and str(bad) not in resolv
