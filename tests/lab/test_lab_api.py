"""Pins the public API of `privsep.testing`: later DHCP client tests build on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import privsep.testing

HERE = Path(__file__).parent


def test_testing_facade_exports() -> None:
    assert sorted(privsep.testing.__all__) == [
        "AddressInfo",
        "Capture",
        "CapturedPacket",
        "DHCP_FILTER",
        "Lab",
        "LabError",
        "Lease",
        "Node",
        "Route",
        "SERVER_KINDS",
        "Server",
        "ServerConfig",
        "ServerError",
        "ServerKind",
        "SweepResult",
        "UdhcpcResult",
        "derive_mac",
        "read_pcap",
        "sweep",
    ]
    assert issubclass(privsep.testing.ServerError, privsep.testing.LabError)
    assert issubclass(privsep.testing.LabError, privsep.PrivsepError)


def test_server_kinds_are_the_four_servers() -> None:
    assert privsep.testing.SERVER_KINDS == ("dnsmasq", "kea", "dhcpd", "udhcpd")


def test_lab_tests_skip_with_a_reason_when_not_root() -> None:
    # An unmapped user namespace: euid 65534, no capabilities, files still readable.
    result = subprocess.run(
        [
            "unshare",
            "--user",
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            f"{HERE / 'test_lab_servers.py'}::test_a_pool_outside_the_subnet_is_rejected",
            f"{HERE / 'test_lab_cleanup.py'}::test_close_is_idempotent",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    assert "2 skipped" in result.stdout
    assert "the network lab needs root" in result.stdout
