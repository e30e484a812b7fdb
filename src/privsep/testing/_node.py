"""A handle on one machine of the lab: a network namespace with one lab interface."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import IO, Any, Literal, final

from privsep.testing._errors import LabError
from privsep.testing._ip import AddressInfo, Route, ip_json, parse_addresses, parse_routes
from privsep.testing._udhcpc import parse_env

NodeRole = Literal["server", "client", "host"]

_BUSYBOX = shutil.which("busybox") or "/bin/busybox"


@final
@dataclass(frozen=True, slots=True)
class UdhcpcResult:
    """One run of busybox udhcpc in a node."""

    returncode: int
    elapsed: float  # seconds from start to exit (with -q: until bound)
    output: str  # udhcpc's stdout and stderr
    env: Mapping[str, str]  # what the hook script was last told (`ip`, `router`, ...)


@final
class Node:
    """One machine on the lab segment: `netns` holds `interface` (MAC `mac`).

    Clients have no address until a DHCP client configures one; hosts and the server
    node have a static `address`. Commands run through `ip netns exec`, which also gives
    them a private mount namespace. Files of this node live in `directory`.
    """

    __slots__ = (
        "_hook",
        "_popens",
        "address",
        "directory",
        "interface",
        "mac",
        "name",
        "netns",
        "role",
    )

    def __init__(
        self,
        *,
        name: str,
        role: NodeRole,
        netns: str,
        interface: str,
        mac: str,
        address: IPv4Interface | None,
        directory: Path,
        hook: Path,
    ) -> None:
        self.name = name
        self.role: NodeRole = role
        self.netns = netns
        self.interface = interface
        self.mac = mac
        self.address = address
        self.directory = directory
        self._hook = hook
        self._popens: list[subprocess.Popen[bytes]] = []

    def __repr__(self) -> str:
        return f"<Node {self.name} {self.role} netns={self.netns} {self.interface}>"

    # -- running things ------------------------------------------------------------------

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` wrapped so that it runs in this node's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 30.0,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` in this node to completion; stdout/stderr are captured as text."""
        return subprocess.run(
            self.command(argv),
            check=check,
            timeout=timeout,
            env=None if env is None else {**os.environ, **env},
            input=input,
            capture_output=True,
            text=True,
        )

    def popen(
        self,
        argv: Sequence[str],
        *,
        stdin: int | IO[Any] | None = subprocess.DEVNULL,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in this node. `ip netns exec` execs, so the Popen's pid is the
        program's own. The lab kills it at teardown if it is still running."""
        proc = subprocess.Popen(
            self.command(argv),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=None if env is None else {**os.environ, **env},
            start_new_session=True,  # Ctrl-C reaches us, and the lab decides what to stop
        )
        self._popens.append(proc)
        return proc

    def reap(self) -> None:
        """Collect exited children started with `popen` (the lab calls this at teardown)."""
        for proc in self._popens:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self._popens.clear()

    # -- what the kernel says ----------------------------------------------------------

    def address_details(self, interface: str | None = None) -> tuple[AddressInfo, ...]:
        """IPv4 addresses on the interface with their lifetimes and broadcast."""
        return parse_addresses(
            ip_json("-4", "addr", "show", "dev", interface or self.interface, netns=self.netns)
        )

    def addresses(self, interface: str | None = None) -> tuple[IPv4Interface, ...]:
        """IPv4 addresses on the interface (default: the lab interface)."""
        return tuple(info.interface for info in self.address_details(interface))

    def routes(self, table: str = "main") -> tuple[Route, ...]:
        """IPv4 routes of a routing table of this node."""
        return parse_routes(ip_json("-4", "route", "show", "table", table, netns=self.netns))

    def default_gateways(self) -> tuple[IPv4Address, ...]:
        """Gateways of the default routes, lowest metric first."""
        defaults = sorted(
            (r for r in self.routes() if r.is_default and r.gateway),
            key=lambda r: r.metric or 0,
        )
        return tuple(r.gateway for r in defaults if r.gateway)

    def mtu(self, interface: str | None = None) -> int:
        links = ip_json("link", "show", "dev", interface or self.interface, netns=self.netns)
        if not links:
            raise LabError(f"no interface {interface or self.interface} in {self.netns}")
        return int(links[0]["mtu"])

    def wait_for_address(
        self, *, timeout: float = 10.0, other_than: IPv4Interface | None = None
    ) -> IPv4Interface:
        """Poll until the lab interface has an IPv4 address (other than `other_than`),
        e.g. after starting a DHCP client daemon with `popen`; raise LabError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            found = [a for a in self.addresses() if a != other_than]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise LabError(f"no address on {self.interface} in {self.name} after {timeout} s")
            time.sleep(0.01)  # each poll is one `ip` run; an address is what we wait for

    def flush(self) -> None:
        """Remove IPv4 addresses and routes from the lab interface (between client runs)."""
        self.run(["ip", "-4", "addr", "flush", "dev", self.interface])
        self.run(["ip", "-4", "route", "flush", "dev", self.interface], check=False)

    # -- busybox udhcpc with the lab's hook ------------------------------------------

    @property
    def resolv_conf(self) -> Path:
        """Where the lab's hook script writes DNS settings for this node."""
        return self.directory / "resolv.conf"

    @property
    def hook_env_file(self) -> Path:
        return self.directory / "udhcpc.env"

    @property
    def hook_script(self) -> Path:
        """The lab's udhcpc hook (`-s`): configures with `ip`, writes only lab files."""
        return self._hook

    def hook_env(self) -> dict[str, str]:
        """The variables udhcpc passed to the hook at its last event ({} before any)."""
        try:
            return parse_env(self.hook_env_file.read_text())
        except FileNotFoundError:
            return {}

    def hook_environment(self) -> dict[str, str]:
        """Environment for a DHCP client run here so that the hook writes lab files only."""
        return {
            "PRIVSEP_LAB_RESOLV": str(self.resolv_conf),
            "PRIVSEP_LAB_ENV": str(self.hook_env_file),
        }

    def udhcpc(self, *extra_args: str, timeout: float = 20.0, check: bool = True) -> UdhcpcResult:
        """Run `busybox udhcpc -f -q -n -i IFACE -s HOOK EXTRA...` here until it exits.

        With `check` a failure (no lease) raises LabError carrying udhcpc's output.
        """
        argv = [_BUSYBOX, "udhcpc", "-f", "-q", "-n", "-i", self.interface, "-s", str(self._hook)]
        started = time.monotonic()
        result = self.run(
            [*argv, *extra_args], check=False, timeout=timeout, env=self.hook_environment()
        )
        elapsed = time.monotonic() - started
        output = result.stdout + result.stderr
        if check and result.returncode != 0:
            raise LabError(
                f"udhcpc in {self.name} exited {result.returncode}: "
                + " | ".join(output.strip().splitlines()[-6:])
            )
        return UdhcpcResult(result.returncode, elapsed, output, self.hook_env())
