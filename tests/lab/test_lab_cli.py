"""`privsep lab demo|sweep`: real leases, one-line errors, nothing left behind."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from privsep.testing._ip import list_netns

pytestmark = pytest.mark.lab


def privsep(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "privsep", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _leftovers_of(pid: int) -> list[str]:
    return [name for name in list_netns() if name.startswith(f"privsep-{pid}-")]


def test_demo_leases_from_dnsmasq_then_kea() -> None:
    result = privsep("lab", "demo")

    assert result.returncode == 0, result.stderr
    blocks = re.findall(
        r"^(\w+): leased in \d+ ms\n  address  (\S+)\n  router   (\S+)\n  dns      (\S+)\n"
        r"  lease    (\d+) s$",
        result.stdout,
        re.MULTILINE,
    )
    assert [block[0] for block in blocks] == ["dnsmasq", "kea"]
    for _, address, router, dns, lease in blocks:
        assert IPv4Interface(address).network.prefixlen == 24
        assert IPv4Address("10.77.0.100") <= IPv4Interface(address).ip <= IPv4Address("10.77.0.200")
        assert router == dns == "10.77.0.1"
        assert lease == "120"


def test_demo_json_reports_every_server_asked_for() -> None:
    result = privsep("lab", "demo", "--json", "--servers", "dhcpd,udhcpd")

    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    assert [r["server"] for r in results] == ["dhcpd", "udhcpd"]
    for r in results:
        assert len(r["address"]) == 1
        assert IPv4Interface(r["address"][0]).ip in IPv4Interface("10.77.0.100/24").network
        assert r["router"] == ["10.77.0.1"] and r["dns"] == ["10.77.0.1"]
        assert r["lease_time"] == 120 and r["time_to_lease_ms"] > 0


@pytest.mark.parametrize(
    "args",
    [
        ("--servers", "nosuch"),
        ("--network", "10.77.0.0/24"),  # the network address is no host address
    ],
)
def test_demo_failure_is_one_error_line(args: tuple[str, ...]) -> None:
    result = privsep("lab", "demo", *args)

    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_demo_killed_midway_tears_down() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "privsep", "lab", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not _leftovers_of(proc.pid):  # wait until its lab exists
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.001)

    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)

    assert proc.returncode == 128 + signal.SIGTERM
    assert not _leftovers_of(proc.pid)
    assert not list(Path(tempfile.gettempdir()).glob(f"privsep-{proc.pid}-*"))


def test_sweep_command_reports_in_json() -> None:
    result = privsep("lab", "sweep", "--json")

    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"labs", "namespaces", "processes", "directories"}
