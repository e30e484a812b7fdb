"""`privsep dhcp` against real dnsmasq, Kea and ISC dhcpd in the lab, and what each
process may hold.

Everything is read back from the kernel (`ip -j -n NS`), the servers' lease files,
captures on the bridge, and probes run inside the processes' real sandboxes.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest
from basic_helpers import (
    Files,
    bound_daemon,
    client_argv,
    daemon,
    events,
    hook_lines,
    make_files,
    privsep,
    run_client,
    run_probe,
    settings,
    write_hook,
)

from privsep.services.dhcp._actuator import route_metric_for
from privsep.testing import Lab

pytestmark = pytest.mark.lab

ROUTED = IPv4Network("10.99.0.0/16")
GATEWAY = IPv4Address("10.77.0.1")


def _rich_config(lab: Lab, **changes: object) -> object:
    return lab.server_config(
        mtu=1400,
        domain="lab.example",
        search=("lab.example", "corp.example"),
        static_routes=((ROUTED, GATEWAY), (IPv4Network("0.0.0.0/0"), GATEWAY)),
        **changes,
    )


@pytest.mark.parametrize(
    "kind",
    [
        "dnsmasq",
        "kea",
        pytest.param(
            "dhcpd",
            marks=pytest.mark.skipif(shutil.which("dhcpd") is None, reason="no ISC dhcpd"),
        ),
    ],
)
def test_one_shot_lease_configures_address_routes_mtu_and_resolv_conf(
    lab: Lab, tmp_path: Path, kind: str
) -> None:
    lab.start_server(kind, _rich_config(lab))
    client = lab.add_client("c1")
    files = make_files(tmp_path)
    started = time.monotonic()
    result = run_client(
        client, files, "-q", "--no-arp-probe", "-r", "10.77.0.150", "-x", "hostname:labhost"
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    (address,) = client.addresses()
    assert address == IPv4Interface("10.77.0.150/24")  # -r, honoured by every server
    routes = {(r.destination, r.gateway) for r in client.routes() if r.protocol == "dhcp"}
    assert (ROUTED, GATEWAY) in routes  # option 121
    assert (IPv4Network("0.0.0.0/0"), GATEWAY) in routes  # 121's default route
    assert client.default_gateways() == (GATEWAY,)
    assert client.mtu() == 1400
    resolv = files.resolv_conf.read_text()
    assert "nameserver 10.77.0.1" in resolv
    assert "search lab.example corp.example" in resolv
    assert "# the user's line\nnameserver 192.0.2.53\n" in resolv  # kept byte for byte
    (lease,) = lab.server.leases()
    assert lease.address == address.ip
    if kind != "kea":  # Kea records no client hostname without DDNS settings
        assert lease.hostname == "labhost"
    assert elapsed < 10


def test_a_lease_left_configured_by_a_client_whose_state_is_gone_is_taken_over(
    lab: Lab, tmp_path: Path
) -> None:
    lab.start_server("dnsmasq", lab.server_config())
    client = lab.add_client("c1")
    (tmp_path / "later").mkdir()
    first, second = make_files(tmp_path), make_files(tmp_path / "later")
    assert run_client(client, first, "-q", "--no-arp-probe").returncode == 0
    configured = (client.addresses(), client.routes())
    # Another state dir (or a wiped one): same lease, same address and default route
    # already there. They are adopted: exit 0 at once, nothing changed, nothing doubled.
    result = run_client(client, second, "-q", "--no-arp-probe")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (client.addresses(), client.routes()) == configured
    assert not any(e.get("event") == "apply-failed" for e in events(result.stderr))


def test_with_q_a_lease_that_cannot_be_configured_exits_1_at_once(lab: Lab, tmp_path: Path) -> None:
    lab.start_server("dnsmasq", lab.server_config())
    client = lab.add_client("c1")
    files = make_files(tmp_path)
    # Someone else's default route where ours would go (same metric, other gateway):
    # the actuator refuses to replace it and rolls back; -q must not wait for nothing.
    link = json.loads(client.run(["ip", "-j", "link", "show", client.interface]).stdout)
    metric = str(route_metric_for(link[0]["ifindex"]))
    client.run(["ip", "addr", "add", "192.168.77.1/24", "dev", client.interface])
    client.run(["ip", "route", "add", "default", "via", "192.168.77.254", "metric", metric])
    started = time.monotonic()
    result = run_client(client, files, "-q", "--no-arp-probe")
    assert result.returncode == 1, result.stderr[-3000:]
    assert time.monotonic() - started < 10
    assert any(e.get("event") == "apply-failed" for e in events(result.stderr))
    assert client.addresses() == (IPv4Interface("192.168.77.1/24"),)  # rolled back
    assert client.default_gateways() == (IPv4Address("192.168.77.254"),)


def test_a_process_that_ends_cleanly_on_a_stray_sigterm_is_started_again(
    lab: Lab, tmp_path: Path
) -> None:
    # Exit status 0 is no reason to run on without an actuator (or resolv, or hook).
    with bound_daemon(lab, tmp_path) as b:
        client, d, address = b.node, b.daemon, b.address
        starts = [e for e in events(d.text) if e.get("event") == "start"]
        actuator = [e for e in starts if e["child"] == "dhcp-actuator"][-1]
        os.kill(actuator["pid"], signal.SIGTERM)
        d.wait_for(
            lambda e: (
                e.get("event") == "start"
                and e.get("child") == "dhcp-actuator"
                and e["pid"] != actuator["pid"]
            )
        )
        assert client.addresses() == (address,)
        assert d.proc.poll() is None


def test_kill_9_of_any_process_never_drops_the_address(lab: Lab, tmp_path: Path) -> None:
    with bound_daemon(lab, tmp_path) as b:
        client, d, address = b.node, b.daemon, b.address
        for victim in ("dhcp-engine", "dhcp-actuator", "dhcp-network"):
            logged = events(d.text)
            pid = [e for e in logged if e.get("event") == "start" and e["child"] == victim][-1]
            applied = sum(e.get("event") == "lease-applied" for e in logged)
            os.kill(pid["pid"], signal.SIGKILL)
            deadline = time.monotonic() + 10
            while sum(e.get("event") == "lease-applied" for e in events(d.text)) == applied:
                assert client.addresses() == (address,), f"address lost after killing {victim}"
                assert time.monotonic() < deadline, d.text[-3000:]
                time.sleep(0.01)
            assert client.addresses() == (address,)
        assert d.stop() == 0
    logged = events(d.text)
    assert sum(e.get("event") == "saved-lease" for e in logged) == 3  # INIT-REBOOT each time
    assert not [e for e in logged if e.get("event") == "deconfigure"]


def test_daemon_renews_a_short_kea_lease_and_keeps_the_address_on_sigterm(
    lab: Lab, tmp_path: Path
) -> None:
    lab.start_server("kea", lab.server_config(lease_time=4, renew_time=1, rebind_time=3))
    client = lab.add_client("c1")
    files = make_files(tmp_path)
    hook = write_hook(files)
    with daemon(client, files, "--no-arp-probe", "-s", str(hook)) as d:
        d.wait_for(lambda e: e.get("event") == "lease" and e.get("hook") == "renew", 10)
        d.wait_for(lambda e: e.get("line") == "event=renew")
        (address,) = client.addresses()
        assert d.stop() == 0
    lines = hook_lines(d.text)
    assert lines[0] == "event=deconfig"  # udhcpc's deconfig at start
    assert "event=bound" in lines and f"ip={address.ip}" in lines
    assert "lease=4" in lines
    assert client.addresses() == (address,)  # no -R: the address stays


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_release_on_exit_is_seen_by_the_server_and_removes_the_address(
    lab: Lab, tmp_path: Path, stop: signal.Signals
) -> None:
    with bound_daemon(lab, tmp_path, "-R") as b:
        server, client, files, d, address = b.server, b.node, b.files, b.daemon, b.address
        capture = lab.capture()  # the RELEASE comes at the stop
        assert [lease.address for lease in server.leases()] == [address.ip]
        d.proc.send_signal(stop)  # SIGHUP: the terminal went away; a clean stop all the same
        assert d.stop() == 0
        assert any(e.get("signal") == stop.name for e in events(d.text))
    capture.stop()
    releases = [p for _, p in capture.dhcp_payloads() if b"\x35\x01\x07" in p[240:]]
    assert releases, "no DHCPRELEASE on the wire"
    assert client.addresses() == ()
    deadline = time.monotonic() + 5
    while server.leases() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.leases() == ()
    assert "nameserver 10.77.0.1" not in files.resolv_conf.read_text()


def test_no_server_with_n_exits_1_after_the_tries(lab: Lab, tmp_path: Path) -> None:
    client = lab.add_client("c1")
    files = make_files(tmp_path)
    hook = write_hook(files)
    started = time.monotonic()
    result = run_client(client, files, "-n", "-t", "2", "-T", "0.3", "-s", str(hook))
    assert result.returncode == 1, result.stderr[-3000:]
    assert time.monotonic() - started < 10
    assert "event=leasefail" in hook_lines(result.stderr)
    assert client.addresses() == ()


def test_hostile_strings_reach_the_hook_as_inert_data(lab: Lab, tmp_path: Path) -> None:
    hostile = "$(touch /tmp/privsep-pwned)`id`'q';x"
    server = lab.start_server("dnsmasq", lab.server_config())
    server.stop()  # again, by hand, with options the lab does not model
    config = server.config_file.read_text()
    escaped = hostile.replace("\\", "\\\\").replace('"', '\\"')
    config += f'dhcp-option-force=12,"{escaped}"\ndhcp-option-force=17,"{escaped}"\n'
    own_config = server.config_file.with_name("hostile.conf")
    own_config.write_text(config)
    dnsmasq = lab.server_node.popen(
        ["dnsmasq", "--keep-in-foreground", f"--conf-file={own_config}"]
    )
    try:
        client = lab.add_client("c1")
        files = make_files(tmp_path)
        hook = write_hook(files)
        result = run_client(client, files, "-q", "--no-arp-probe", "-T", "0.3", "-s", str(hook))
    finally:
        dnsmasq.terminate()
        dnsmasq.wait()
    assert result.returncode == 0, result.stderr[-3000:]
    lines = hook_lines(result.stderr)
    assert f"rootpath={hostile}" in lines  # as sent, byte for byte
    assert "hostname=bad" in lines  # udhcpc's rule for a hostname with odd characters
    assert not Path("/tmp/privsep-pwned").exists()


def test_layout_path_passes_check() -> None:
    path = privsep("dhcp", "--layout").stdout.strip()
    assert Path(path).is_file()
    check = privsep("check", path)
    assert check.returncode == 0, check.stderr


def test_inspect_shows_each_process_holds_only_its_grants() -> None:
    path = privsep("dhcp", "--layout").stdout.strip()
    result = privsep("inspect", path, "--json")
    assert result.returncode == 0, result.stderr
    procs = {p["name"]: p for p in json.loads(result.stdout)["processes"]}
    assert set(procs) == {
        "dhcp-network",
        "dhcp-engine",
        "dhcp-actuator",
        "dhcp-resolv",
        "dhcp-hook",
    }
    assert procs["dhcp-network"]["capabilities"] == []
    assert procs["dhcp-network"]["fds"] == ["packet", "link"]
    assert procs["dhcp-engine"]["capabilities"] == []
    assert procs["dhcp-engine"]["fds"] == ["link", "actuator"]  # channels only
    assert procs["dhcp-actuator"]["capabilities"] == ["CAP_NET_ADMIN"]
    assert procs["dhcp-hook"]["capabilities"] == []
    assert procs["dhcp-resolv"]["capabilities"] == []
    for proc in procs.values():
        assert "net" in proc["namespaces"]  # each in an empty network namespace
        assert proc["seccomp"] is not None and proc["landlock"] is not None
    written = {
        rule["path"]
        for proc in procs.values()
        for rule in proc["landlock"]
        if "write" in rule["access"] and not rule["path"].startswith("/dev/")
    }
    assert written == {"/var/lib/privsep/dhcp", "/etc"}  # actuator's state, dhcp-resolv's /etc


_PROBE = """\
import os, socket
for family, kind in ((socket.AF_INET, socket.SOCK_DGRAM), (socket.AF_PACKET, socket.SOCK_RAW),
                     (socket.AF_NETLINK, socket.SOCK_DGRAM), (socket.AF_UNIX, socket.SOCK_STREAM)):
    try:
        socket.socket(family, kind).close()
        print("socket", int(family), "allowed")
    except OSError as exc:
        print("socket", int(family), exc.errno)
try:
    os.execv("/bin/true", ["/bin/true"])
except OSError as exc:
    print("execve", exc.errno)
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines()
              if ":\\t" in line)
print("CapEff", status["CapEff"].strip())
print("NoNewPrivs", status["NoNewPrivs"].strip())
print("fds", os.environ["LISTEN_FDNAMES"])
"""


@pytest.mark.parametrize(
    ("process", "cap_eff", "fds"),
    [
        ("dhcp-engine", "0000000000000000", "link:actuator"),
        ("dhcp-network", "0000000000000000", "packet:link"),
        ("dhcp-actuator", f"{1 << 12:016x}", "route:hook:resolv:actuator"),  # CAP_NET_ADMIN
        ("dhcp-resolv", "0000000000000000", "resolv"),
    ],
)
def test_probe_each_process_cannot_open_sockets_or_execve(
    lab: Lab, tmp_path: Path, process: str, cap_eff: str, fds: str
) -> None:
    client = lab.add_client("c1")
    files = make_files(tmp_path)
    script = files.root / "probe.py"
    script.write_text(_PROBE)
    path = privsep("dhcp", "--layout").stdout.strip()
    result = run_probe(path, process, script, *settings(client, files))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for family in (2, 17, 16, 1):  # AF_INET, AF_PACKET, AF_NETLINK, AF_UNIX
        assert f"socket {family} 1" in lines  # EPERM
    assert "execve 1" in lines
    assert f"CapEff {cap_eff}" in lines
    assert "NoNewPrivs 1" in lines
    assert f"fds {fds}" in lines


def test_client_help_lists_the_udhcpc_options() -> None:
    result = privsep("dhcp", "eth0", "--help")
    assert result.returncode == 0
    for option in (
        *("-q", "-n", "-t", "-T", "-A", "-s", "-x", "-O", "-V", "-r", "-R", "--netns"),
        *("-C", "-o", "-F", "-H", "-p", "-b"),
    ):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["-x", "lease:abc"], "lease must be seconds"),
        (["-x", "lease:4294967296"], "lease must be seconds"),
        (["-x", "lease:²"], "lease must be seconds"),  # a digit to str.isdigit, not to int
        (["-x", "81:zz"], "value must be hex"),
        (["-x", "255:00"], "out of range"),
        (["-x", "hostname:" + "a" * 300], "hostname must be 1..255 bytes"),
        (["-O", "nosuch"], "unknown DHCP option"),
        (["-r", "999.1.1.1"], "not an IPv4 address"),
        (["-T", "inf"], "not a finite, non-negative number"),
        (["-A", "nan"], "not a finite, non-negative number"),
        (["-T", "-1"], "not a finite, non-negative number"),
        (["-F", "bad name!"], "not a DNS name"),
        (["-F", "a" * 64 + ".example"], "not a DNS name"),  # a label over 63 bytes
        # An empty value must not quietly mean the default (the host's /etc/resolv.conf,
        # its namespace, /var/lib/...): a wrapper's unset variable, say.
        (["--resolv-conf", ""], "must not be empty"),
        (["--state-dir", ""], "must not be empty"),
        (["--netns", ""], "must not be empty"),
        (["-s", ""], "must not be empty"),
        (["-p", ""], "must not be empty"),
        (["-t", "0"], "at least 1"),
        (["-T", "0.001"], "at least 0.1 seconds"),
        (["-s", "/tmp"], "not a regular file"),
        (["-s", "/etc/passwd"], "must be readable and executable by others"),  # 0644
        (["--resolv-conf", "/tmp"], "is a directory"),
        (["--netns", "../../etc"], "no network namespace"),
        (["-p", "/tmp"], "Is a directory"),
    ],
)
def test_bad_option_values_exit_2_with_one_line_and_start_nothing(
    lab: Lab, tmp_path: Path, option: list[str], message: str
) -> None:
    node = lab.add_client()
    state = tmp_path / "state"
    result = privsep(
        "dhcp", node.interface, "--netns", node.netns, "--state-dir", str(state), *option
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(lines) == 1  # argparse's usage text may precede it
    assert message in lines[0]
    assert "Traceback" not in result.stderr
    assert not state.exists()  # nothing half-applied


@pytest.mark.parametrize(
    ("state_dir", "message"),
    [("a-file", "not a directory"), ("/proc/no/such", "No such file or directory")],
)
def test_an_unusable_state_dir_exits_2_with_one_line(
    lab: Lab, tmp_path: Path, state_dir: str, message: str
) -> None:
    node = lab.add_client()
    (tmp_path / "a-file").write_text("")
    path = tmp_path / state_dir
    result = privsep("dhcp", node.interface, "--netns", node.netns, "--state-dir", str(path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: --state-dir {path}: {message}"]


def test_a_second_client_on_the_same_state_dir_is_refused(lab: Lab, tmp_path: Path) -> None:
    with bound_daemon(lab, tmp_path) as b:
        client, files, first, address = b.node, b.files, b.daemon, b.address
        second = run_client(client, files, "-q", "--no-arp-probe")
        assert second.returncode == 2
        # The interface's lock answers first; the state dir's would, for another one.
        assert second.stderr.splitlines() == [
            f"error: interface {client.interface} (network namespace {client.netns}) "
            "is in use by another privsep dhcp"
        ]
        assert first.proc.poll() is None
        assert client.addresses() == (address,)
        assert first.stop() == 0
    # The lock went with the first client.
    assert run_client(client, files, "-q", "--no-arp-probe").returncode == 0


@pytest.mark.parametrize(
    ("interface", "message"),
    [
        ("nosuch0", "no interface 'nosuch0' in network namespace"),
        ("lo", "not an Ethernet"),
        ("eth0:1", "bad interface name"),  # an alias label, not an interface
    ],
)
def test_an_unusable_interface_exits_2_at_once(
    lab: Lab, tmp_path: Path, interface: str, message: str
) -> None:
    # Checked in the interface's namespace before anything starts: not a supervisor
    # restarting its processes until it gives up.
    node = lab.add_client()
    state = tmp_path / "state"
    result = privsep("dhcp", interface, "--netns", node.netns, "--state-dir", str(state))
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert message in result.stderr
    assert not state.exists()


def test_the_interface_lock_follows_the_namespace_not_its_name(lab: Lab, tmp_path: Path) -> None:
    # `ip netns attach` can give one namespace a second name: still one client.
    with bound_daemon(lab, tmp_path) as b:
        client, files = b.node, b.files
        alias = f"{client.netns}-alias"
        # A second name by bind mount, as `ip netns attach` makes one, but from the
        # namespace's own file: never from a process that might not have entered it yet
        # (that alias would name the host's namespace).
        aliased = Path("/run/netns", alias)
        aliased.touch()
        subprocess.run(["mount", "--bind", f"/run/netns/{client.netns}", aliased], check=True)
        try:
            assert aliased.stat().st_ino == Path("/run/netns", client.netns).stat().st_ino
            other = Files(files.root, files.root / "state-b", files.resolv_conf)
            second = privsep(*client_argv(client, other, "-q")[1:], "--netns", alias)
            assert second.returncode == 2, second.stderr[-2000:]
            assert "is in use by another privsep dhcp" in second.stderr
        finally:
            subprocess.run(["ip", "netns", "delete", alias], check=False)


def test_under_the_test_guard_a_name_for_the_hosts_own_namespace_is_refused(
    tmp_path: Path,
) -> None:
    # The pytest plugin sets PRIVSEP_REQUIRE_NETNS: `--netns` must then name another
    # namespace than the host's, whatever it is called. (No such interface either: if
    # the guard failed, nothing could run on the host all the same.)
    alias = Path("/run/netns", f"privsep-hostalias-{secrets.token_hex(4)}")
    alias.touch()
    subprocess.run(["mount", "--bind", "/proc/self/ns/net", alias], check=True)
    try:
        result = privsep(
            "dhcp", "nosuchif0", "--netns", alias.name, "--state-dir", str(tmp_path / "s")
        )
    finally:
        subprocess.run(["umount", alias], check=False)
        alias.unlink()
    assert result.returncode == 2
    assert "refusing to run on the host's network" in result.stderr
    assert not (tmp_path / "s").exists()


def test_arp_probe_checks_the_address_before_configuring_it(lab: Lab, tmp_path: Path) -> None:
    lab.start_server("kea", lab.server_config())
    client = lab.add_client("c1")
    files = make_files(tmp_path)
    capture = lab.capture(bpf_filter="arp")
    started = time.monotonic()
    result = run_client(client, files, "-q")  # --arp-probe is the default
    elapsed = time.monotonic() - started
    capture.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    (address,) = client.addresses()
    arp = [p.frame for p in capture.packets() if p.frame[12:14] == b"\x08\x06"]
    probes = [f for f in arp if f[28:32] == bytes(4) and f[38:42] == address.ip.packed]
    assert len(probes) == 3  # RFC 5227: PROBE_NUM probes from 0.0.0.0 for the address
    assert elapsed > 3  # probes 1-2 s apart, then ANNOUNCE_WAIT, before the address is used


def test_sigusr2_releases_and_sigusr1_leases_again_as_udhcpc(lab: Lab, tmp_path: Path) -> None:
    with bound_daemon(lab, tmp_path) as b:
        server, client, d, address = b.server, b.node, b.daemon, b.address
        d.proc.send_signal(signal.SIGUSR1)  # renew now: the lease is extended in place
        d.wait_for(lambda e: e.get("event") == "lease" and e.get("hook") == "renew")
        assert client.addresses() == (address,)
        d.proc.send_signal(signal.SIGUSR2)  # release: deconfigured, the client waits
        d.wait_for(lambda e: e.get("event") == "deconfigure")
        assert client.addresses() == ()
        deadline = time.monotonic() + 5
        while server.leases() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.leases() == ()
        assert d.proc.poll() is None
        d.proc.send_signal(signal.SIGUSR1)  # and starts over
        deadline = time.monotonic() + 10
        while sum(e.get("event") == "lease-applied" for e in events(d.text)) < 3:
            assert time.monotonic() < deadline, d.text[-3000:]  # bound, renew, bound
            time.sleep(0.02)
        assert len(client.addresses()) == 1
        assert d.stop() == 0


class _Var:
    def __init__(self, key: str, value: str) -> None:
        self.key, self.value = key, value


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("PATH", "/tmp", "bad hook variable name"),
        ("LD_PRELOAD=x", "", "bad hook variable name"),
        ("1ip", "", "bad hook variable name"),
        ("ip", "10.0.0.1\x00rm -rf /", "holds NUL"),
    ],
)
def test_actuator_refuses_hook_variables_that_are_not_plain_data(
    key: str, value: str, reason: str
) -> None:
    from privsep.services.dhcp._actuator import ActuatorRejected
    from privsep.services.dhcp._proc_actuator import hook_variables

    with pytest.raises(ActuatorRejected, match=reason):
        hook_variables([_Var(key, value)], "eth0")
    env = hook_variables([_Var("interface", "evil0"), _Var("hostname", "$(reboot)")], "eth0")
    assert env == {"interface": "eth0", "hostname": "$(reboot)"}  # our name; values as data
