"""Real DHCP servers in the lab hand real leases to busybox udhcpc; the kernel agrees."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from privsep.testing import SERVER_KINDS, Lab, LabError, ServerConfig, ServerError
from privsep.testing._ip import ip_json, netns_id

pytestmark = pytest.mark.lab

ACK = 5


def options(payload: bytes) -> dict[int, bytes]:
    """Options of a BOOTP payload (no overload handling: lab servers do not overload)."""
    assert payload[236:240] == b"\x63\x82\x53\x63"
    found: dict[int, bytes] = {}
    i = 240
    while i < len(payload):
        code = payload[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        length = payload[i + 1]
        found[code] = found.get(code, b"") + payload[i + 2 : i + 2 + length]
        i += 2 + length
    return found


def message_types(payloads: tuple[tuple[float, bytes], ...]) -> list[int]:
    return [options(p).get(53, b"\0")[0] for _, p in payloads]


def test_udhcpc_is_configured_by_each_server(dhcp_lab: Lab) -> None:
    lab, client, server = dhcp_lab, dhcp_lab.client(), dhcp_lab.server
    host_resolv = Path("/etc/resolv.conf").read_bytes()
    capture = lab.capture()

    client.udhcpc()

    (address,) = client.addresses()
    first, last = server.config.pool
    assert first <= address.ip <= last
    assert address.network == IPv4Network("10.77.0.0/24")
    assert client.default_gateways() == (IPv4Address("10.77.0.1"),)
    (info,) = client.address_details()
    assert info.valid_lft is not None and 110 <= info.valid_lft <= 120
    assert client.resolv_conf.read_text() == "nameserver 10.77.0.1\n"
    assert client.resolv_conf.is_relative_to(lab.tmpdir)
    assert Path("/etc/resolv.conf").read_bytes() == host_resolv
    assert [(lease.address, lease.mac) for lease in server.leases()] == [(address.ip, client.mac)]
    assert message_types(capture.dhcp_payloads()) == [1, 2, 3, ACK]


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_every_config_field_reaches_the_client(lab: Lab, kind: str) -> None:
    client = lab.add_client()
    config = lab.server_config(
        pool=(IPv4Address("10.77.0.50"), IPv4Address("10.77.0.50")),
        routers=(IPv4Address("10.77.0.2"), IPv4Address("10.77.0.3")),
        dns_servers=(IPv4Address("10.77.0.53"), IPv4Address("10.77.0.54")),
        domain="lab.example",
        search=("a.example", "b.example"),
        mtu=1400,
        lease_time=600,
        renew_time=200,
        rebind_time=500,
        static_routes=((IPv4Network("10.99.0.0/16"), IPv4Address("10.77.0.9")),),
    )
    lab.start_server(kind, config)  # type: ignore[arg-type]
    capture = lab.capture()

    run = client.udhcpc("-O", "search", "-O", "staticroutes", "-O", "mtu")

    assert client.addresses() == (IPv4Interface("10.77.0.50/24"),)
    assert client.mtu() == 1400
    routes = {(str(r.destination), str(r.gateway)) for r in client.routes() if r.gateway}
    assert routes == {("10.99.0.0/16", "10.77.0.9")}  # RFC 3442: option 121 wins over 3
    assert run.env["router"] == "10.77.0.2 10.77.0.3"
    assert run.env["domain"] == "lab.example"
    assert run.env["lease"] == "600"
    assert client.resolv_conf.read_text() == (
        "search a.example b.example\nnameserver 10.77.0.53\nnameserver 10.77.0.54\n"
    )
    ack = next(p for _, p in capture.dhcp_payloads() if options(p)[53] == bytes([ACK]))
    assert int.from_bytes(options(ack)[58], "big") == 200
    assert int.from_bytes(options(ack)[59], "big") == 500


def _sockets(lab: Lab, pid: int, kind: str) -> list[str]:
    """Local addresses of `pid`'s sockets of `kind` (`-u` UDP, `-0` packet), via ss."""
    out = lab.server_node.run(["ss", "-H", "-anp", kind]).stdout
    return [
        line.split()[-3 if kind == "-0" else 3]
        for line in out.splitlines()
        if f"pid={pid}," in line
    ]


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_servers_listen_only_on_the_lab_interface(lab: Lab, kind: str) -> None:
    server = lab.start_server(kind)  # type: ignore[arg-type]
    assert server.pid is not None

    own = Path(f"/proc/{server.pid}/ns/net").stat()
    assert (own.st_dev, own.st_ino) == netns_id(lab.server_node.netns)
    assert own.st_ino != Path("/proc/self/ns/net").stat().st_ino
    links = {
        link.split()[0].split("@")[0]
        for link in lab.server_node.run(["ip", "-br", "link"]).stdout.splitlines()
    }
    assert links == {"lo", "lab0", "carrier0"}  # carrier0: the bridge's always-up dummy port
    udp = _sockets(lab, server.pid, "-u")
    assert udp, "the server has no UDP socket"
    assert all(local in {"0.0.0.0%lab0:67", "10.77.0.1:67"} for local in udp), udp
    assert all(local == "*:lab0" for local in _sockets(lab, server.pid, "-0"))


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_server_started_before_any_client_serves_later_clients(lab: Lab, kind: str) -> None:
    lab.start_server(kind)  # type: ignore[arg-type]
    client = lab.add_client()

    client.udhcpc()

    assert len(client.addresses()) == 1


def test_kea_hands_out_leases_of_a_few_seconds(lab: Lab) -> None:
    client = lab.add_client()
    lab.start_server("kea", lab.server_config(lease_time=4))

    client.udhcpc()

    (info,) = client.address_details()
    assert info.valid_lft is not None and 0 < info.valid_lft <= 4


def test_dnsmasq_refuses_leases_below_its_minimum(lab: Lab) -> None:
    with pytest.raises(ServerError, match="120 s"):
        lab.start_server("dnsmasq", lab.server_config(lease_time=60))


def test_a_pool_outside_the_subnet_is_rejected() -> None:
    with pytest.raises(LabError, match="pool"):
        ServerConfig(pool=(IPv4Address("10.1.0.1"), IPv4Address("10.1.0.9")))


def test_paused_server_is_silent_until_resumed(kea_lab: Lab) -> None:
    client, server = kea_lab.client(), kea_lab.server

    server.pause()
    silent = client.udhcpc("-t", "1", "-T", "1", check=False)
    server.resume()
    answered = client.udhcpc()

    assert silent.returncode == 1
    assert not silent.env.get("ip")
    assert answered.returncode == 0
    assert len(client.addresses()) == 1


def test_restart_switches_config_and_forgets_leases(dnsmasq_lab: Lab) -> None:
    client, server = dnsmasq_lab.client(), dnsmasq_lab.server
    client.udhcpc()
    old_pid = server.pid
    assert len(server.leases()) == 1

    new_pool = (IPv4Address("10.77.0.20"), IPv4Address("10.77.0.20"))
    server.restart(server.config.with_changes(pool=new_pool), fresh_leases=True)
    assert server.leases() == ()
    client.flush()
    client.udhcpc()

    assert server.pid != old_pid
    assert client.addresses() == (IPv4Interface("10.77.0.20/24"),)
    assert [lease.address for lease in server.leases()] == [IPv4Address("10.77.0.20")]


def test_hosts_share_the_segment_with_clients(dnsmasq_lab: Lab) -> None:
    lab, client = dnsmasq_lab, dnsmasq_lab.client()
    host = lab.add_host("holder", "10.77.0.150/24")
    other = lab.add_host("auto")
    client.udhcpc()

    assert host.addresses() == (IPv4Interface("10.77.0.150/24"),)
    assert other.addresses() == (IPv4Interface("10.77.0.254/24"),)
    ping = client.run(["busybox", "ping", "-c", "1", "-W", "2", "10.77.0.150"], check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    neighbours = host.run(["ip", "-4", "neigh", "show", "dev", "eth0"]).stdout
    assert client.mac in neighbours


def test_second_server_runs_on_a_host(lab: Lab) -> None:
    host = lab.add_host("rogue", "10.77.0.2/24")
    lab.start_server("dnsmasq")
    rogue = lab.start_server(
        "kea",
        lab.server_config(
            pool=(IPv4Address("10.77.0.60"), IPv4Address("10.77.0.60")),
            routers=(IPv4Address("10.77.0.2"),),
        ),
        node=host,
    )
    client = lab.add_client()

    capture = lab.capture()
    client.udhcpc()

    assert rogue.node is host and rogue.pid is not None
    offers = [p for _, p in capture.dhcp_payloads() if options(p)[53] == b"\x02"]
    servers = {IPv4Address(options(p)[54]) for p in offers}
    assert servers == {IPv4Address("10.77.0.1"), IPv4Address("10.77.0.2")}


def test_clients_have_stable_names_and_macs(lab: Lab) -> None:
    a = lab.add_client("a")
    b = lab.add_client("b", interface="wan0", mac="02:00:00:00:00:0b")

    assert re.fullmatch(r"privsep-\d+-[0-9a-f]{4}-c-a", a.netns)
    assert a.netns.startswith(f"{lab.token}-")
    assert a.mac == "02:70:73:ca:97:81"  # derived from the name: the same in every run
    links = b.run(["ip", "-br", "link", "show", "wan0"]).stdout
    assert "02:00:00:00:00:0b" in links and "UP" in links
    assert b.addresses() == ()
    server_links = ip_json("link", "show", "lab0", netns=lab.server_node.netns)
    assert server_links[0]["address"] == lab.server_node.mac  # kept as ports were added
    with pytest.raises(LabError):
        lab.add_client("a")
    with pytest.raises(LabError):
        lab.add_client("Bad Name")


def _offer_delay(lab: Lab) -> float:
    """Seconds from the client's DISCOVER to the server's OFFER, by kernel timestamps."""
    client = lab.client()
    capture = lab.capture()
    client.udhcpc()
    times = {options(p)[53][0]: t for t, p in capture.dhcp_payloads()}
    client.flush()
    return times[2] - times[1]


def test_ping_check_delays_the_first_offer_only_when_turned_on(lab: Lab) -> None:
    lab.add_client()
    server = lab.start_server("dhcpd", lab.server_config(ping_check=True))
    checked = _offer_delay(lab)
    server.restart(server.config.with_changes(ping_check=False), fresh_leases=True)
    unchecked = _offer_delay(lab)

    assert checked >= 0.9  # dhcpd pings a new address for 1 s before offering it
    assert unchecked < 0.5


def test_wait_for_address_follows_a_daemon_client(kea_lab: Lab) -> None:
    client = kea_lab.client()
    daemon = client.popen(
        ["busybox", "udhcpc", "-f", "-i", "eth0", "-s", str(client.hook_script)],
        env=client.hook_environment(),
    )

    address = client.wait_for_address(timeout=10)

    assert daemon.poll() is None  # still running: not a one-shot
    assert address.ip in kea_lab.server_config().subnet
    with pytest.raises(LabError, match="no address"):
        kea_lab.add_client("idle").wait_for_address(timeout=0.05)
