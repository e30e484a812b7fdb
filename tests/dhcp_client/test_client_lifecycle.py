"""The real `privsep dhcp` through a lease's whole life, against real servers in the lab.

Kea with leases of a few seconds drives renew, rebind and expiry in real time (lease 8 s,
T1 4 s, T2 7 s); dnsmasq, which is authoritative, drives the NAK (Kea 2.2 does not NAK
an unknown renewal). The client runs from the host namespace with `--netns`.
"""

from __future__ import annotations

import signal
import time
from ipaddress import IPv4Address, IPv4Interface

import pytest
from lifecycle_helpers import (
    ClientSet,
    DhcpPacket,
    RunningClient,
    address_monitor,
    address_on,
    describe,
    dhcp_packets,
    of_type,
    valid_lft,
    wait_for,
    wait_for_lease_address,
    wait_for_packet,
)

from privsep.testing import Capture, Lab, Node, Server

pytestmark = pytest.mark.lab

LEASE, T1, T2 = 8, 4, 7
TOLERANCE = 1.0  # RFC 2131 timers: ±1 s


def _kea_short_leases(lab: Lab) -> tuple[Node, Server]:
    node = lab.add_client()
    config = lab.server_config(lease_time=LEASE, renew_time=T1, rebind_time=T2)
    return node, lab.start_server("kea", config)


def _bound(node: Node, client: RunningClient, capture: Capture) -> tuple[IPv4Interface, DhcpPacket]:
    """The address and the REQUEST that started the lease (its time is the lease start)."""
    address = wait_for_lease_address(node, client)
    ack = wait_for_packet(
        capture,
        lambda p: p.message_type == "ACK" and p.yiaddr == address.ip,
        timeout=2,
        what=f"the ACK of {address}",
    )
    requests = of_type([p for p in dhcp_packets(capture) if p.xid == ack.xid], "REQUEST")
    assert requests, describe(dhcp_packets(capture))
    return address, requests[0]


def _wait_for_lease_dropped(server: Server, address: IPv4Interface) -> None:
    wait_for(
        lambda: all(lease.address != address.ip for lease in server.leases()),
        timeout=3,
        what="dnsmasq to drop the released lease",
    )


def test_renews_at_t1_with_unicast_request_and_keeps_address(lab: Lab) -> None:
    node, _ = _kea_short_leases(lab)
    capture = lab.capture()
    with ClientSet(lab) as clients:
        client = clients.privsep(node)
        wait_for_lease_address(node, client)
        address, start = _bound(node, client, capture)

        renew = wait_for_packet(
            capture,
            lambda p: (
                p.message_type == "REQUEST" and p.ciaddr == address.ip and p.time > start.time
            ),
            timeout=T1 + 3,
            what="a renewing REQUEST",
        )
        assert abs(renew.time - start.time - T1) <= TOLERANCE, str(renew)
        # RENEWING is unicast to the server, IP and Ethernet (RFC 2131 §4.4.5).
        assert renew.ip_dst == lab.server_address.ip, str(renew)
        assert renew.eth_dst == lab.server_node.mac, str(renew)
        assert renew.ip_src == address.ip
        assert renew.requested_address is None  # MUST NOT carry option 50 while renewing

        ack = wait_for_packet(
            capture,
            lambda p: p.message_type == "ACK" and p.xid == renew.xid,
            timeout=3,
            what="the server's ACK of the renewal",
        )
        assert ack.yiaddr == address.ip
        # Without the renewal, ≤ LEASE - T1 s would be left; the actuator refreshed it.
        wait_for(
            lambda: (valid_lft(node, address) or 0) >= LEASE - 2,
            timeout=2,
            what=f"valid_lft of {address} refreshed to ~{LEASE} s: {node.address_details()}",
        )
        assert node.addresses() == (address,)
        assert client.proc.poll() is None, client.log_tail()


def test_rebinds_with_broadcast_request_when_server_silent_since_t1(lab: Lab) -> None:
    node, server = _kea_short_leases(lab)
    capture = lab.capture()
    with ClientSet(lab) as clients:
        client = clients.privsep(node)
        wait_for_lease_address(node, client)
        address, start = _bound(node, client, capture)
        # Silent from T1 on. (Resuming it before T2 would not test a rebind: a stopped
        # server keeps the renewal queued in its socket and answers it on resume.)
        server.pause()

        renew = wait_for_packet(
            capture,
            lambda p: (
                p.message_type == "REQUEST" and p.ciaddr == address.ip and p.time > start.time
            ),
            timeout=T1 + 3,
            what="the renewing REQUEST",
        )
        assert not renew.broadcast, str(renew)
        rebind = wait_for_packet(
            capture,
            lambda p: (
                p.message_type == "REQUEST"
                and p.ciaddr == address.ip
                and p.broadcast
                and p.time > renew.time
            ),
            timeout=T2 - T1 + 3,
            what="a rebinding (broadcast) REQUEST",
        )
        server.resume()
        assert abs(rebind.time - start.time - T2) <= TOLERANCE, str(rebind)
        assert rebind.eth_dst == "ff:ff:ff:ff:ff:ff"
        assert rebind.server_id is None and rebind.requested_address is None
        # Between T1 and T2 the client retries at max(half the time to T2, 60 s): so the
        # renewal is not repeated inside this 3 s window.
        renewals = [
            p
            for p in of_type(dhcp_packets(capture), "REQUEST", after=renew.time - 0.001)
            if not p.broadcast and p.time < rebind.time
        ]
        assert len(renewals) == 1, describe(renewals)

        wait_for_packet(
            capture,
            lambda p: p.message_type == "ACK" and p.xid == rebind.xid,
            timeout=3,
            what="the ACK of the rebinding REQUEST",
        )
        wait_for(
            lambda: (valid_lft(node, address) or 0) >= LEASE - 2,
            timeout=2,
            what=f"valid_lft of {address} refreshed: {node.address_details()}",
        )
        # Still there after the old lease would have run out.
        wait_for(
            lambda: time.time() > start.time + LEASE + 0.5,
            timeout=LEASE,
            what="the old lease's end",
        )
        assert node.addresses() == (address,)
        assert client.proc.poll() is None, client.log_tail()


def test_expiry_removes_address_runs_deconfig_and_restarts_discovery(lab: Lab) -> None:
    node, server = _kea_short_leases(lab)
    capture = lab.capture()
    with ClientSet(lab) as clients, address_monitor(node) as monitor:
        client = clients.privsep(node)
        wait_for_lease_address(node, client)
        address, start = _bound(node, client, capture)
        server.pause()  # for good: the lease must run out

        wait_for(
            lambda: address_on(node) is None,
            timeout=LEASE + 3,
            what=f"{address} to go at the lease's end",
        )
        assert time.time() >= start.time + LEASE - TOLERANCE  # not before the lease ends
        deleted = monitor.deleted(address.ip)
        assert deleted, monitor.text()
        discover = wait_for_packet(
            capture,
            lambda p: p.message_type == "DISCOVER" and p.time > start.time + LEASE - TOLERANCE,
            timeout=6,
            what="a DISCOVER after expiry",
        )
        assert discover.ciaddr == IPv4Address(0)
        before_expiry = [p for p in dhcp_packets(capture) if p.time < start.time + LEASE - 0.5]
        assert not of_type(before_expiry, "DISCOVER", after=start.time), describe(before_expiry)

        client.wait_for_hooks(lambda ev: "bound" in ev and "deconfig" in ev[ev.index("bound") :])
        assert client.proc.poll() is None, client.log_tail()


def test_nak_after_pool_change_removes_address_and_leads_to_new_lease(lab: Lab) -> None:
    node = lab.add_client()
    # dnsmasq: leases ≥ 120 s, but its T1 follows option 58.
    config = lab.server_config(lease_time=120, renew_time=T1, rebind_time=100)
    server = lab.start_server("dnsmasq", config)
    capture = lab.capture()
    with ClientSet(lab) as clients:
        client = clients.privsep(node)
        wait_for_lease_address(node, client)
        address, start = _bound(node, client, capture)

        new_pool = (IPv4Address("10.77.0.50"), IPv4Address("10.77.0.60"))
        server.restart(config.with_changes(pool=new_pool), fresh_leases=True)

        renew = wait_for_packet(
            capture,
            lambda p: (
                p.message_type == "REQUEST" and p.ciaddr == address.ip and p.time > start.time
            ),
            timeout=T1 + 3,
            what="the renewing REQUEST",
        )
        nak = wait_for_packet(
            capture,
            lambda p: p.message_type == "NAK" and p.xid == renew.xid,
            timeout=3,
            what="dnsmasq's NAK",
        )
        wait_for(lambda: address not in node.addresses(), timeout=3, what=f"{address} removed")
        new = wait_for(
            lambda: next((a for a in node.addresses() if new_pool[0] <= a.ip <= new_pool[1]), None),
            timeout=15,
            what="an address from the new pool",
        )
        assert node.addresses() == (new,)
        discovers = of_type(dhcp_packets(capture), "DISCOVER", after=nak.time)
        assert discovers, describe(dhcp_packets(capture))
        # NAK backoff (3 s, as udhcpc): no instant DISCOVER storm.
        assert discovers[0].time - nak.time >= 2.0, describe(discovers)

        calls = client.wait_for_hooks(lambda ev: ev.count("bound") >= 2)
        events = [c.event for c in calls]
        first_bound = events.index("bound")
        assert events[first_bound + 1 :] == ["nak", "deconfig", "bound"], events
        assert calls[-1].env["ip"] == str(new.ip)
        assert client.proc.poll() is None, client.log_tail()


def test_release_on_exit_with_R(dnsmasq_lab: Lab) -> None:
    lab = dnsmasq_lab
    node, server = lab.client(), lab.server
    capture = lab.capture()
    with ClientSet(lab) as clients:
        client = clients.privsep(node, "-R")
        address = wait_for_lease_address(node, client)
        wait_for(
            lambda: any(lease.address == address.ip for lease in server.leases()),
            timeout=3,
            what="dnsmasq's lease record",
        )
        status = client.stop(signal.SIGTERM)
        assert status == 0, client.log_tail()

        releases = of_type(dhcp_packets(capture, live=False), "RELEASE")
        assert len(releases) == 1, describe(dhcp_packets(capture))
        assert releases[0].ciaddr == address.ip
        assert releases[0].server_id == lab.server_address.ip
        assert not releases[0].broadcast  # RELEASE is unicast to the server
        assert address_on(node) is None
        _wait_for_lease_dropped(server, address)


def test_exit_without_R_keeps_address_and_sends_no_release(dnsmasq_lab: Lab) -> None:
    # udhcpc semantics: without -R the lease is left in place on SIGTERM.
    lab = dnsmasq_lab
    node, server = lab.client(), lab.server
    capture = lab.capture()
    with ClientSet(lab) as clients:
        client = clients.privsep(node)
        address = wait_for_lease_address(node, client)
        status = client.stop(signal.SIGTERM)
        assert status == 0, client.log_tail()
        assert not of_type(dhcp_packets(capture, live=False), "RELEASE")
        assert node.addresses() == (address,)
        assert any(lease.address == address.ip for lease in server.leases())


def test_init_reboot_requests_saved_address_without_discover(dnsmasq_lab: Lab) -> None:
    lab = dnsmasq_lab
    node = lab.client()
    with ClientSet(lab) as clients:
        state = clients.state_dir(node)
        first = clients.privsep(node, "-q", state_dir=state)
        assert first.wait_exit(15) == 0, first.log_tail()
        (address,) = node.addresses()
        node.flush()  # as after a reboot: the second run must configure it itself

        capture = lab.capture()
        second = clients.privsep(node, "-q", state_dir=state)
        assert second.wait_exit(15) == 0, second.log_tail()
        packets = dhcp_packets(capture, live=False)

        assert not of_type(packets, "DISCOVER"), describe(packets)
        requests = of_type(packets, "REQUEST")
        assert requests, describe(packets)
        assert requests[0].requested_address == address.ip, describe(packets)
        assert requests[0].server_id is None  # INIT-REBOOT names no server
        assert requests[0].ciaddr == IPv4Address(0)
        assert requests[0].broadcast
        assert node.addresses() == (address,)


def test_arp_conflict_declines_and_gets_another_address(lab: Lab) -> None:
    node = lab.add_client()
    taken = IPv4Address("10.77.0.100")
    lab.add_host("holder", f"{taken}/24")  # already uses the first address Kea offers
    lab.start_server(
        "kea", lab.server_config(pool=(taken, IPv4Address("10.77.0.101")), lease_time=120)
    )
    capture = lab.capture()
    with ClientSet(lab) as clients, address_monitor(node) as monitor:
        client = clients.privsep(node, arp_probe=True)
        decline = wait_for_packet(
            capture,
            lambda p: p.message_type == "DECLINE",
            timeout=10,
            what="a DECLINE",
        )
        assert decline.requested_address == taken, str(decline)
        final = wait_for_lease_address(node, client, timeout=30)
        assert final.ip != taken
        assert f"inet {taken}/" not in monitor.text()  # never configured, not even briefly
        calls = client.wait_for_hooks(lambda ev: "bound" in ev)
        assert [c.env.get("ip") for c in calls if c.event == "bound"] == [str(final.ip)]


def test_sigusr1_renews_at_once_as_udhcpc(dnsmasq_lab: Lab) -> None:
    lab = dnsmasq_lab
    # dnsmasq's T1 is 60 s: a renewal within seconds is the signal's.
    node = lab.client()
    capture = lab.capture()
    with ClientSet(lab) as clients:
        client = clients.privsep(node)
        address = wait_for_lease_address(node, client)
        client.proc.send_signal(signal.SIGUSR1)
        renew = wait_for_packet(
            capture,
            lambda p: p.message_type == "REQUEST" and p.ciaddr == address.ip,
            timeout=3,
            what="a renewing REQUEST after SIGUSR1",
        )
        wait_for_packet(
            capture,
            lambda p: p.message_type == "ACK" and p.xid == renew.xid,
            timeout=3,
            what="its ACK",
        )
        assert client.proc.poll() is None, client.log_tail()
        assert node.addresses() == (address,)


def test_sigusr2_releases_and_sigusr1_starts_over_as_udhcpc(dnsmasq_lab: Lab) -> None:
    lab = dnsmasq_lab
    node, server = lab.client(), lab.server
    capture = lab.capture()
    with ClientSet(lab) as clients:
        client = clients.privsep(node)
        address = wait_for_lease_address(node, client)
        client.wait_for_hooks(lambda ev: "bound" in ev)
        client.proc.send_signal(signal.SIGUSR2)
        release = wait_for_packet(
            capture, lambda p: p.message_type == "RELEASE", timeout=3, what="a RELEASE"
        )
        assert release.ciaddr == address.ip
        wait_for(lambda: address_on(node) is None, timeout=3, what=f"{address} removed")
        client.wait_for_hooks(lambda ev: ev[-1:] == ["deconfig"])
        assert client.proc.poll() is None, client.log_tail()  # released, still running
        _wait_for_lease_dropped(server, address)

        client.proc.send_signal(signal.SIGUSR1)
        wait_for_packet(
            capture,
            lambda p: p.message_type == "DISCOVER" and p.time > release.time,
            timeout=5,
            what="a DISCOVER after SIGUSR1",
        )
        wait_for_lease_address(node, client)
        client.wait_for_hooks(lambda ev: ev.count("bound") == 2)
