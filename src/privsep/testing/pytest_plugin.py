"""pytest fixtures for the network lab.

Load with `pytest_plugins = ["privsep.testing.pytest_plugin"]` in a conftest.py.

Fixtures (function scope; each test gets a fresh lab, torn down even when it fails):

- `lab`: an open `Lab` with no server and no client.
- `dnsmasq_lab`, `kea_lab`, `dhcpd_lab`, `udhcpd_lab`: a lab with that server started
  (`lab.server`) and one client `lab.client()` (namespace with `eth0`, no address).
- `dhcp_lab`: the same, parametrized over every server kind.

Tests using them, and every test marked `lab`, are skipped with the reason when not root
or when `ip` (or the server) is missing. At session start the plugin runs `sweep()` once
to remove leftovers of crashed runs (labs of live processes are never touched).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from privsep.testing._lab import Lab, lab_unavailable_reason
from privsep.testing._servers import SERVER_KINDS, ServerKind

_BINARIES: dict[ServerKind, str] = {
    "dnsmasq": "dnsmasq",
    "kea": "kea-dhcp4",
    "dhcpd": "dhcpd",
    "udhcpd": "busybox",
}


def pytest_sessionstart(session: pytest.Session) -> None:
    # Safety net: no test may run the DHCP client on the host's own interfaces
    # (`privsep dhcp` refuses to start without --netns while this is set).
    os.environ["PRIVSEP_REQUIRE_NETNS"] = "1"
    if lab_unavailable_reason() is None:
        from privsep.testing._sweep import sweep  # noqa: PLC0415 - only when labs can run

        sweep()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked `lab` are skipped, with the reason, where no lab can be built."""
    if item.get_closest_marker("lab") is not None:
        reason = lab_unavailable_reason()
        if reason is not None:
            pytest.skip(reason)


def _skip_unless_possible(kind: ServerKind | None = None) -> None:
    reason = lab_unavailable_reason()
    if reason is None and kind is not None and shutil.which(_BINARIES[kind]) is None:
        reason = f"{_BINARIES[kind]} is not installed"
    if reason is not None:
        pytest.skip(reason)


def _server_lab(kind: ServerKind) -> Iterator[Lab]:
    _skip_unless_possible(kind)
    with Lab() as lab:
        lab.add_client()
        lab.start_server(kind)
        yield lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    """An open, empty lab (server node with its bridge; no server, no client)."""
    _skip_unless_possible()
    with Lab() as opened:
        yield opened


@pytest.fixture
def dnsmasq_lab() -> Iterator[Lab]:
    """A lab running dnsmasq, with one client `lab.client()` on `eth0`."""
    yield from _server_lab("dnsmasq")


@pytest.fixture
def kea_lab() -> Iterator[Lab]:
    """A lab running ISC Kea (kea-dhcp4), with one client `lab.client()` on `eth0`."""
    yield from _server_lab("kea")


@pytest.fixture
def dhcpd_lab() -> Iterator[Lab]:
    """A lab running ISC dhcpd, with one client `lab.client()` on `eth0`."""
    yield from _server_lab("dhcpd")


@pytest.fixture
def udhcpd_lab() -> Iterator[Lab]:
    """A lab running busybox udhcpd, with one client `lab.client()` on `eth0`."""
    yield from _server_lab("udhcpd")


@pytest.fixture(params=SERVER_KINDS)
def dhcp_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A lab running each server kind in turn, with one client `lab.client()`."""
    kind: ServerKind = request.param
    yield from _server_lab(kind)
