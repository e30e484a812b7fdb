"""Helpers for the DHCP client's basic tests: run the real `privsep dhcp` against the lab.

The client runs in the host's namespace (as the supervisor would under systemd) with
`--netns` naming the lab client's namespace: the supervisor opens the packet and
netlink sockets there, and every sandboxed process lives in an empty namespace of
its own. State dir and resolv.conf live in a per-test directory, never in /etc.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

from privsep.testing import Lab, Node, Server

PRIVSEP = Path(sys.executable).with_name("privsep")


@dataclass(frozen=True, slots=True)
class Files:
    """Per-test files readable by the sandboxes' dynamic uids."""

    root: Path
    state_dir: Path
    resolv_conf: Path


def make_files(tmp_path: Path) -> Files:
    root = tmp_path / "client"
    root.mkdir()
    for path in (tmp_path, root):
        path.chmod(0o755)  # the hook's sandbox runs under an unprivileged uid
    resolv = root / "resolv.conf"
    resolv.write_text("# the user's line\nnameserver 192.0.2.53\n")
    return Files(root, root / "state", resolv)


def client_argv(node: Node, files: Files, *args: str) -> list[str]:
    return [
        str(PRIVSEP),
        "dhcp",
        node.interface,
        "--netns",
        node.netns,
        "--state-dir",
        str(files.state_dir),
        "--resolv-conf",
        str(files.resolv_conf),
        "--stop-timeout",
        "2",
        *args,
    ]


def run_client(
    node: Node, files: Files, *args: str, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        client_argv(node, files, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def events(text: str) -> list[dict[str, Any]]:
    """The JSON log lines of a run (other lines are ignored)."""
    out = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            item = json.loads(line)
            if isinstance(item, dict):
                out.append(item)
    return out


def hook_lines(text: str) -> list[str]:
    """What the hook script printed, in order."""
    return [
        e["line"]
        for e in events(text)
        if e.get("process") == "dhcp-hook" and e.get("event") == "hook_output"
    ]


class Daemon:
    """`privsep dhcp` in daemon mode; its stderr goes to a file we poll."""

    def __init__(self, node: Node, files: Files, *args: str) -> None:
        self.log_path = files.root / f"client-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            client_argv(node, files, *args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    @property
    def text(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, predicate: Any, timeout: float = 15.0) -> dict[str, Any]:
        """The first log event for which `predicate(event)` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in events(self.text):
                if predicate(event):
                    return event
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no such event within {timeout} s; log:\n{self.text[-4000:]}")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait()
        self._log.close()


@contextlib.contextmanager
def daemon(node: Node, files: Files, *args: str) -> Iterator[Daemon]:
    d = Daemon(node, files, *args)
    try:
        yield d
    finally:
        d.close()


@dataclass(frozen=True, slots=True)
class Bound:
    """What `bound_daemon` set up: the server, the client node, its files, the running
    `privsep dhcp` and the address it configured."""

    server: Server
    node: Node
    files: Files
    daemon: Daemon
    address: IPv4Interface


@contextlib.contextmanager
def bound_daemon(lab: Lab, tmp_path: Path, *args: str) -> Iterator[Bound]:
    """dnsmasq in the lab and `privsep dhcp --no-arp-probe ARGS` in daemon mode on a new
    node `c1`, from the moment its lease is applied."""
    server = lab.start_server("dnsmasq", lab.server_config())
    node = lab.add_client("c1")
    files = make_files(tmp_path)
    with daemon(node, files, "--no-arp-probe", *args) as d:
        d.wait_for(lambda e: e.get("event") == "lease-applied")
        (address,) = node.addresses()
        yield Bound(server, node, files, d, address)


def write_hook(files: Files) -> Path:
    """A hook script that prints its event and every variable, quoted safely."""
    script = files.root / "hook.sh"
    script.write_text(
        "#!/bin/sh\n"
        'printf "event=%s\\n" "$1"\n'
        + "".join(
            f'printf "{v}=%s\\n" "${{{v}-unset}}"\n'
            for v in ("interface", "ip", "mask", "router", "dns", "hostname", "rootpath", "lease")
        )
    )
    script.chmod(0o755)
    return script


def privsep(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PRIVSEP), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def run_probe(
    layout: str, process: str, script: Path, *sets: str
) -> subprocess.CompletedProcess[str]:
    argv: list[str] = ["probe", layout, process, str(script)]
    for item in sets:
        argv += ["--set", item]
    return privsep(*argv)


def settings(node: Node, files: Files) -> Sequence[str]:
    files.state_dir.mkdir(mode=0o700, exist_ok=True)
    return (
        f"interface={node.interface}",
        f"netns={node.netns}",
        f"state_dir={files.state_dir}",
        f"resolv_conf={files.resolv_conf}",
        f"resolv_dir={files.root}",
        f"hook={write_hook(files)}",
    )
