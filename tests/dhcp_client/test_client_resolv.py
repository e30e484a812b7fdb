"""resolv.conf through `dhcp-resolv`: only that process may write the resolv.conf directory.

The atomic replace needs the whole directory writable (/etc by default), so that grant
lives in a process without capabilities, not in `dhcp-actuator` (CAP_NET_ADMIN). The
real client against the lab, the layout as `privsep inspect` reports it, and probes in
the real sandboxes show where the grant is, and where it is not.
"""

from __future__ import annotations

import asyncio
import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from basic_helpers import daemon, events, make_files, privsep, run_client, run_probe, settings

from privsep.services.dhcp._proc_resolv import ResolvService
from privsep.services.dhcp._resolvconf import ResolvConfRefused
from privsep.testing import Lab

pytestmark = pytest.mark.lab


def test_resolv_conf_is_replaced_atomically_by_dhcp_resolv_with_the_lease_dns(
    lab: Lab, tmp_path: Path
) -> None:
    lab.start_server("kea", lab.server_config(domain="lab.example", search=("lab.example",)))
    client = lab.add_client("c1")
    files = make_files(tmp_path)
    inode = files.resolv_conf.stat().st_ino
    result = run_client(client, files, "-q", "--no-arp-probe")
    assert result.returncode == 0, result.stderr[-3000:]
    text = files.resolv_conf.read_text()
    assert "nameserver 10.77.0.1\n" in text
    assert "search lab.example\n" in text
    assert text.endswith("# the user's line\nnameserver 192.0.2.53\n")  # kept, after ours
    # Replaced by rename (a new inode), no temporary file left behind.
    assert files.resolv_conf.stat().st_ino != inode
    assert not [p for p in files.root.iterdir() if p.name.startswith(".resolv.conf.")]
    writers = {e["process"] for e in events(result.stderr) if e.get("event") == "resolv-written"}
    assert writers == {"dhcp-resolv"}


def test_resolv_conf_none_starts_no_dhcp_resolv(lab: Lab, tmp_path: Path) -> None:
    lab.start_server("kea", lab.server_config())
    client = lab.add_client("c1")
    files = make_files(tmp_path)
    before = files.resolv_conf.read_bytes()
    argv = ("-q", "--no-arp-probe", "--resolv-conf", "none")  # the last --resolv-conf wins
    result = run_client(client, files, *argv)
    assert result.returncode == 0, result.stderr[-3000:]
    assert client.addresses()  # the lease is applied all the same
    assert files.resolv_conf.read_bytes() == before
    processes = {e.get("process") for e in events(result.stderr)}
    assert "dhcp-actuator" in processes
    assert "dhcp-resolv" not in processes


def test_a_resolv_conf_dhcp_resolv_refuses_rolls_the_whole_lease_back(
    lab: Lab, tmp_path: Path
) -> None:
    lab.start_server("kea", lab.server_config())
    client = lab.add_client("c1")
    files = make_files(tmp_path)
    files.resolv_conf.write_text("# a user's file over 64 KiB\n" * 3000)  # not rewritten
    before = files.resolv_conf.read_bytes()
    with daemon(client, files, "--no-arp-probe") as d:
        # The engine hears of the failure once the actuator's rollback is done.
        d.wait_for(lambda e: e.get("event") == "apply-failed" and e["process"] == "dhcp-engine")
        assert client.addresses() == ()  # the address went with the failed transaction
        d.stop()
    failed = next(e for e in events(d.text) if e.get("event") == "apply-failed-rolling-back")
    assert failed["process"] == "dhcp-actuator"
    assert failed["error"].startswith("dhcp-resolv: ")
    assert "larger than 65536 bytes" in failed["error"]
    refused = [e for e in events(d.text) if e.get("event") == "resolv-refused"]
    assert refused and all(e["process"] == "dhcp-resolv" for e in refused)
    assert files.resolv_conf.read_bytes() == before


def _written(proc: dict[str, object]) -> set[str]:
    rules = proc["landlock"]
    assert isinstance(rules, list)
    return {
        rule["path"]
        for rule in rules
        if "write" in rule["access"] and not rule["path"].startswith("/dev/")
    }


def test_inspect_gives_the_resolv_dir_to_dhcp_resolv_only() -> None:
    path = privsep("dhcp", "--layout").stdout.strip()
    result = privsep("inspect", path, "--json")
    assert result.returncode == 0, result.stderr
    procs = {p["name"]: p for p in json.loads(result.stdout)["processes"]}
    assert _written(procs["dhcp-actuator"]) == {"/var/lib/privsep/dhcp"}  # the state dir only
    assert _written(procs["dhcp-resolv"]) == {"/etc"}
    assert procs["dhcp-resolv"]["capabilities"] == []
    assert procs["dhcp-resolv"]["uid"] == 0  # to write in /etc, with no capability
    assert "net" in procs["dhcp-resolv"]["namespaces"]
    assert procs["dhcp-resolv"]["fds"] == ["resolv"]
    assert procs["dhcp-resolv"]["seccomp"] is not None


_CREATE = """\
import os, sys
for where in sys.argv[1:]:
    try:
        os.close(os.open(os.path.join(where, "probe-file"), os.O_CREAT | os.O_WRONLY, 0o600))
        print(where, "created")
    except OSError as exc:
        print(where, exc.errno)
"""


@pytest.mark.parametrize("process", ["dhcp-actuator", "dhcp-resolv"])
def test_probe_only_dhcp_resolv_can_create_files_in_the_resolv_dir(
    lab: Lab, tmp_path: Path, process: str
) -> None:
    client = lab.add_client("c1")
    files = make_files(tmp_path)
    # Here the state dir lies inside the resolv.conf directory: dhcp-resolv may write
    # both, the actuator only the state dir.
    targets = [files.root] if process == "dhcp-resolv" else [files.root, files.state_dir]
    script = files.root.parent / "create.py"
    script.write_text(f"import sys\nsys.argv[1:] = {[str(t) for t in targets]!r}\n" + _CREATE)
    path = privsep("dhcp", "--layout").stdout.strip()
    result = run_probe(path, process, script, *settings(client, files))
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = dict(line.rsplit(" ", 1) for line in result.stdout.splitlines())
    if process == "dhcp-actuator":
        assert outcome[str(files.root)] in ("13", "1")  # EACCES or EPERM
        assert not (files.root / "probe-file").exists()
        assert outcome[str(files.state_dir)] == "created"
        assert (files.state_dir / "probe-file").is_file()
    else:
        assert outcome[str(files.root)] == "created"
        assert (files.root / "probe-file").is_file()


def test_dhcp_resolv_refuses_hostile_values_and_undoes_only_its_own_last_write(
    tmp_path: Path,
) -> None:
    target = tmp_path / "resolv.conf"
    target.write_text("nameserver 192.0.2.53\n")
    service = ResolvService(str(target), "eth0")
    server = int(IPv4Address("10.0.0.53"))

    async def body() -> None:
        for servers, domain, search in (
            ([server], "evil\nnameserver 6.6.6.6", []),
            ([server], "", ["ok.example", "bad name"]),
            ([server] * 9, "", []),
            ([server], "", ["a.example"] * 7),
            ([server], "x" * 300, []),
        ):
            with pytest.raises(ResolvConfRefused):
                await service.write(servers, domain, search)
        assert target.read_text() == "nameserver 192.0.2.53\n"
        with pytest.raises(ResolvConfRefused, match="nothing to undo"):
            await service.undo()
        await service.write([server], "lab.example", [])
        assert "nameserver 10.0.0.53\ndomain lab.example\n" in target.read_text()
        await service.undo()
        assert target.read_text() == "nameserver 192.0.2.53\n"
        with pytest.raises(ResolvConfRefused, match="nothing to undo"):
            await service.undo()

    asyncio.run(body())
