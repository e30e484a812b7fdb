"""The hook script interface of the real `privsep dhcp`, side by side with busybox udhcpc.

One recording script (argv[1] and the whole environment of every run) is given to both
clients against the same Kea server; the event sequence and the variables must agree.
Then a hostile server: option strings full of shell syntax must reach the hook as inert
bytes, and nothing may run them.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from lifecycle_helpers import (
    ClientSet,
    HookCall,
    RunningClient,
    install_recorder,
    proc_stats,
    wait_for,
    wait_for_lease_address,
)

from privsep.testing import Lab, Node, Server

pytestmark = pytest.mark.lab

# Kea with 8 s leases, T1 4 s. Both clients renew on SIGUSR1 ("renew now", udhcpc's
# signal): busybox udhcpc ignores T1 and would renew only after 15 s (it treats leases
# under 30 s as 30 s); privsep's renewal at T1 is test_client_lifecycle's business.
LEASE, T1, T2 = 8, 4, 7
POOL = (IPv4Address("10.77.0.100"), IPv4Address("10.77.0.200"))

# Accepted differences between the two clients' environments:
# - `ip`: Kea may hand the second client another address of the pool (checked apart);
# - `opt61`: Kea echoes the client identifier (RFC 6842); udhcpc runs with -C (none),
#   privsep sends its RFC 4361 identifier, so only privsep's ACK carries one.
# - `PATH`: udhcpc passes its own environment on, privsep passes a fixed PATH.
_DIFFERENT_BY_DESIGN = frozenset({"ip", "opt61", "PATH"})


def _cycle(node: Node, client: RunningClient) -> list[HookCall]:
    """Run a client through start, bound, one renewal (SIGUSR1) and a release on SIGTERM."""
    client.wait_for_hooks(lambda ev: "bound" in ev)
    # udhcpc renews from the leased address: its hook must have configured it first.
    wait_for_lease_address(node, client)
    client.proc.send_signal(signal.SIGUSR1)
    # busybox 1.35 sometimes misses the ACK to that first renew (it starts listening
    # late) and retries 3 s later: hence 6 s.
    client.wait_for_hooks(lambda ev: "renew" in ev, timeout=6)
    client.stop(signal.SIGTERM)
    return client.hook_calls()


def _comparable(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in _DIFFERENT_BY_DESIGN}


def test_hook_events_and_variables_match_busybox_udhcpc(lab: Lab) -> None:
    node = lab.add_client()
    server = lab.start_server(
        "kea", lab.server_config(lease_time=LEASE, renew_time=T1, rebind_time=T2, pool=POOL)
    )
    with ClientSet(lab) as clients:
        reference = _cycle(node, clients.udhcpc(node, "-f", "-R", "-C"))
        node.flush()
        server.restart(fresh_leases=True)
        ours = _cycle(node, clients.privsep(node, "-R"))

    assert [c.event for c in reference] == ["deconfig", "bound", "renew", "deconfig"]
    assert [c.event for c in ours] == [c.event for c in reference]
    for theirs, mine in zip(reference, ours, strict=True):
        assert _comparable(mine.env) == _comparable(theirs.env), mine.event
        if "ip" in theirs.env:
            assert POOL[0] <= IPv4Address(mine.env["ip"]) <= POOL[1]
    assert ours[-1].env == {"interface": node.interface, "PATH": ours[-1].env["PATH"]}


def test_hook_script_with_bin_sh_shebang_runs(lab: Lab) -> None:
    # Every udhcpc script starts with #!/bin/sh (Debian's default.script included); on a
    # merged-/usr system /bin is a symlink that the hook's sandbox must provide too.
    node = lab.add_client()
    lab.start_server("dnsmasq")
    script = install_recorder(lab, "hook-bin-sh.sh")
    script.write_text(script.read_text().replace("#!/usr/bin/sh", "#!/bin/sh", 1))
    with ClientSet(lab) as clients:
        client = clients.privsep(node, script=script)
        wait_for_lease_address(node, client)
        calls = client.wait_for_hooks(lambda ev: "bound" in ev, timeout=2)
        assert [c.event for c in calls] == ["deconfig", "bound"]


def _children(pid: int) -> list[tuple[str, str]]:
    """(command name, state) of each child of `pid`."""
    return [(p.name, p.state) for p in proc_stats() if p.ppid == pid]


def test_what_a_hook_leaves_in_the_background_is_reaped(lab: Lab) -> None:
    # dhcp-hook is pid 1 of its pid namespace: a daemon a script starts in the
    # background becomes its child when the script exits. Once that daemon ends it must
    # be reaped, or every renewal of a long-running client would leave a zombie.
    node = lab.add_client()
    lab.start_server("dnsmasq")
    script = lab.tmpdir / "hook-daemon.sh"
    script.write_text("#!/bin/sh\n( exec sleep 1 & )\nexit 0\n")
    script.chmod(0o755)
    with ClientSet(lab) as clients:
        client = clients.privsep(node, script=script)
        wait_for_lease_address(node, client)
        hook = client.child_pids()["dhcp-hook"]
        # The backgrounded sleep is the hook process's child now (the test's premise).
        wait_for(lambda: ("sleep", "S") in _children(hook), timeout=5, what="sleep under dhcp-hook")
        wait_for(
            lambda: all(name != "sleep" for name, _ in _children(hook)),
            timeout=5,
            what="the ended sleep reaped (no zombie left under dhcp-hook)",
        )
        assert client.proc.poll() is None


# ---------------------------------------------------------------- hostile options


def _hostile(tag: str) -> str:
    """A value a naive `eval` or unquoted shell expansion would execute."""
    # Short: udhcpc asks for 576-byte replies, where three of these must still fit.
    return f"$(touch /tmp/pw-{tag}-a)`touch /tmp/pw-{tag}-b`'\";touch /tmp/pw-{tag}-c"


def _dnsmasq_quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _start_hostile_dnsmasq(lab: Lab, options: Mapping[int, str]) -> Server:
    """dnsmasq from the lab's rendering, plus `dhcp-option-force` lines the lab's
    ServerConfig has no field for; started by hand in the server node."""
    server = lab.start_server("dnsmasq")
    server.stop()
    config = server.config_file.read_text()
    for code, value in options.items():
        config += f"dhcp-option-force={code},{_dnsmasq_quoted(value)}\n"
    hostile_config = server.directory / "dnsmasq-hostile.conf"
    hostile_config.write_text(config)
    node = lab.server_node
    log = (server.directory / "dnsmasq-hostile.log").open("wb")
    proc = node.popen(
        ["dnsmasq", "--keep-in-foreground", f"--conf-file={hostile_config}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()

    def listening() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"dnsmasq exited: {(server.directory / 'dnsmasq-hostile.log').read_text()}")
        out = node.run(["ss", "-Hlun", "sport", "=", ":67"]).stdout
        return bool(out.strip())

    wait_for(listening, timeout=10, what="dnsmasq with hostile options to listen")
    return server


def _pwned(tag: str) -> list[Path]:
    return sorted(Path("/tmp").glob(f"pw-{tag}-*"))


def _run_against_hostile_server(
    lab: Lab, client_kind: str, options: Mapping[int, str], *, timeout: float = 10.0
) -> tuple[Node, HookCall]:
    _start_hostile_dnsmasq(lab, options)
    node = lab.add_client()
    clients = ClientSet(lab)
    with clients:
        if client_kind == "udhcpc":
            client = clients.udhcpc(node, "-f", "-C")
        else:
            client = clients.privsep(node)
        address = wait_for_lease_address(node, client, timeout=timeout)
        calls = client.wait_for_hooks(lambda ev: "bound" in ev)
        (bound,) = [c for c in calls if c.event == "bound"]
        assert bound.env["ip"] == str(address.ip)
    return node, bound


@pytest.mark.parametrize("client_kind", ["udhcpc", "privsep"])
def test_hostile_option_strings_reach_the_hook_as_inert_data(lab: Lab, client_kind: str) -> None:
    tag = f"{lab.token[-4:]}{client_kind[0]}"
    hostile = _hostile(tag)
    try:
        # 17 rootpath and 67 bootfile go to the hook as sent; 12 hostname only if it is
        # a name, else `bad` (udhcpc's rule).
        _, bound = _run_against_hostile_server(
            lab, client_kind, {12: hostile, 17: hostile, 67: hostile}
        )
        assert bound.env.get("rootpath") == hostile, dict(bound.env)
        assert bound.env.get("bootfile") == hostile, dict(bound.env)
        assert bound.env["hostname"] == "bad"  # present, and replaced (udhcpc does the same)
        assert f"pw-{tag}" not in " ".join(
            v for k, v in bound.env.items() if k not in {"rootpath", "bootfile"}
        )
        assert _pwned(tag) == []
    finally:
        for path in _pwned(tag):
            path.unlink()


def test_hostile_domain_name_costs_only_the_domain_not_the_lease(lab: Lab) -> None:
    tag = f"{lab.token[-4:]}d"
    hostile = _hostile(tag)
    try:
        node, bound = _run_against_hostile_server(lab, "privsep", {15: hostile})
        assert bound.env["domain"] == "bad"  # as udhcpc
        # The rest of the lease is applied: DNS servers in resolv.conf, without a domain.
        resolv = (node.directory / "resolv.conf").read_text()
        assert f"nameserver {lab.server_address.ip}" in resolv
        assert f"pw-{tag}" not in resolv and "domain" not in resolv
        assert _pwned(tag) == []
    finally:
        for path in _pwned(tag):
            path.unlink()
