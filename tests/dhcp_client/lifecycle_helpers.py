"""Helpers for the DHCP client's lifecycle tests: run the real `privsep dhcp` (or busybox
udhcpc) against the lab's real servers, and read back what happened on the wire, on the
interface, in the client's JSON logs and in its hook script.

Every client runs under `ClientSet`, whose exit SIGTERMs, then SIGKILLs, each client and
its whole process tree (the supervisor and its sandboxed children), also when a test
fails. The lab fixture tears down the namespaces and the servers.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, final

import pytest
from basic_helpers import PRIVSEP, events

from privsep.testing import Capture, Lab, Node, read_pcap

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
MESSAGE_TYPES = {
    1: "DISCOVER",
    2: "OFFER",
    3: "REQUEST",
    4: "DECLINE",
    5: "ACK",
    6: "NAK",
    7: "RELEASE",
    8: "INFORM",
}
BROADCAST = IPv4Address("255.255.255.255")
_T = TypeVar("_T")


# ---------------------------------------------------------------- polling


def wait_for(
    probe: Callable[[], _T | None], *, timeout: float, what: str, interval: float = 0.02
) -> _T:
    """Poll `probe` until it returns something other than None/False; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)  # polling observable state (capture, kernel, log), not a guess


# ---------------------------------------------------------------- DHCP on the wire


@final
@dataclass(frozen=True, slots=True)
class DhcpPacket:
    """One captured BOOTP/DHCP frame, decoded just enough for lifecycle assertions.

    Parsed here on purpose, independently of privsep's codec: the tests check the client
    with a second reading of the wire.
    """

    time: float
    eth_src: str
    eth_dst: str
    ip_src: IPv4Address
    ip_dst: IPv4Address
    op: int
    xid: int
    ciaddr: IPv4Address
    yiaddr: IPv4Address
    chaddr: str
    options: Mapping[int, bytes] = field(default_factory=dict)

    @property
    def message_type(self) -> str | None:
        value = self.options.get(53)
        return MESSAGE_TYPES.get(value[0]) if value and len(value) == 1 else None

    @property
    def requested_address(self) -> IPv4Address | None:
        value = self.options.get(50)
        return IPv4Address(value) if value and len(value) == 4 else None

    @property
    def server_id(self) -> IPv4Address | None:
        value = self.options.get(54)
        return IPv4Address(value) if value and len(value) == 4 else None

    @property
    def from_client(self) -> bool:
        return self.op == 1

    @property
    def broadcast(self) -> bool:
        return self.ip_dst == BROADCAST

    def __str__(self) -> str:
        return (
            f"{self.time:.3f} {self.message_type} {self.ip_src}->{self.ip_dst}"
            f" ciaddr={self.ciaddr} yiaddr={self.yiaddr} xid={self.xid:#x}"
        )


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def decode_frame(when: float, frame: bytes) -> DhcpPacket | None:
    """A DhcpPacket for an Ethernet/IPv4/UDP 67-68 frame, or None for anything else."""
    if len(frame) < 14 + 20 + 8 + 240 or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[14] & 0x0F) * 4
    if frame[23] != 17:
        return None
    udp = 14 + ihl
    sport, dport, length = struct.unpack_from("!HHH", frame, udp)
    if {sport, dport} != {67, 68}:
        return None
    bootp = frame[udp + 8 : udp + length]
    if len(bootp) < 240 or bootp[236:240] != b"\x63\x82\x53\x63":
        return None
    options: dict[int, bytes] = {}
    i = 240
    while i < len(bootp):
        code = bootp[i]
        if code == 0:
            i += 1
            continue
        if code == 255 or i + 1 >= len(bootp):
            break
        size = bootp[i + 1]
        options[code] = options.get(code, b"") + bootp[i + 2 : i + 2 + size]
        i += 2 + size
    return DhcpPacket(
        time=when,
        eth_dst=_mac(frame[0:6]),
        eth_src=_mac(frame[6:12]),
        ip_src=IPv4Address(frame[26:30]),
        ip_dst=IPv4Address(frame[30:34]),
        op=bootp[0],
        xid=struct.unpack_from("!I", bootp, 4)[0],
        ciaddr=IPv4Address(bootp[12:16]),
        yiaddr=IPv4Address(bootp[16:20]),
        chaddr=_mac(bootp[28:34]),
        options=options,
    )


def dhcp_packets(capture: Capture, *, live: bool = True) -> list[DhcpPacket]:
    """The DHCP packets captured so far. `live` reads the file while tcpdump still writes
    it (-U flushes each packet); otherwise the capture is stopped first."""
    frames = read_pcap(capture.path) if live else capture.packets()
    out = []
    for packet in frames:
        decoded = decode_frame(packet.time, packet.frame)
        if decoded is not None:
            out.append(decoded)
    return out


def of_type(packets: Sequence[DhcpPacket], kind: str, *, after: float = 0.0) -> list[DhcpPacket]:
    return [p for p in packets if p.message_type == kind and p.time > after]


def describe(packets: Sequence[DhcpPacket]) -> str:
    return "\n".join(str(p) for p in packets) or "(no DHCP packets)"


def wait_for_packet(
    capture: Capture,
    match: Callable[[DhcpPacket], bool],
    *,
    timeout: float,
    what: str,
) -> DhcpPacket:
    """Poll the live capture until a packet matches; fail with the packets seen."""
    deadline = time.monotonic() + timeout
    while True:
        packets = dhcp_packets(capture)
        for packet in packets:
            if match(packet):
                return packet
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout} s; captured:\n{describe(packets)}")
        time.sleep(0.02)  # tcpdump writes each packet as it comes (-U)


# ---------------------------------------------------------------- the hook script

# Records argv[1] and the whole environment, hex-encoded (values may hold newlines and
# quotes), on stdout: privsep logs it as `hook_output` lines, udhcpc's stdout is ours.
# Chunks stay under the hook runner's 1024-character line limit. #!/usr/bin/sh keeps the
# recording independent of /bin in the hook's sandbox (test_client_hooks checks #!/bin/sh).
RECORDER_SCRIPT = r"""#!/usr/bin/sh
{ printf 'event=%s\0' "$1"; env -0; } | od -An -tx1 -v | tr -d ' \n' | fold -w 900 \
    | sed 's/^/HOOKREC /'
echo
echo HOOKEND
"""
# What a shell adds, and the lab hook's own settings: not the DHCP client's variables.
_IGNORED_ENV = frozenset({"PWD", "OLDPWD", "SHLVL", "_", "PRIVSEP_LAB_RESOLV", "PRIVSEP_LAB_ENV"})
HOOK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@final
@dataclass(frozen=True, slots=True)
class HookCall:
    """One run of the hook script: the event (argv[1]) and the environment it saw."""

    event: str
    env: Mapping[str, str]


def install_recorder(lab: Lab, name: str = "hook-recorder.sh", *, then: Path | None = None) -> Path:
    """The recording hook; with `then`, it goes on with that script (udhcpc needs the
    lab's hook to configure the interface, privsep's actuator does it itself)."""
    path = lab.tmpdir / name
    tail = f'exec {then} "$@"\n' if then is not None else "exit 0\n"
    path.write_text(RECORDER_SCRIPT + tail)
    path.chmod(0o755)
    return path


def parse_hook_lines(lines: Sequence[str]) -> list[HookCall]:
    """HookCalls from the recorder's output lines, in order."""
    calls: list[HookCall] = []
    chunks: list[str] = []
    for line in lines:
        if line.startswith("HOOKREC "):
            chunks.append(line[len("HOOKREC ") :].strip())
        elif line.strip() == "HOOKEND" and chunks:
            raw = bytes.fromhex("".join(chunks))
            chunks = []
            entries = [e.decode("utf-8", "surrogateescape") for e in raw.split(b"\0") if e]
            event = entries[0].partition("=")[2]
            env = {}
            for entry in entries[1:]:
                key, _, value = entry.partition("=")
                if key not in _IGNORED_ENV:
                    env[key] = value
            calls.append(HookCall(event, env))
    return calls


# ---------------------------------------------------------------- the client processes


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of /proc/PID/stat the tests look at."""

    pid: int
    name: str
    state: str  # R, S, Z, ...
    ppid: int


def proc_stats() -> Iterator[ProcStat]:
    """Every process we can see, a snapshot (one gone meanwhile is skipped)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat.rpartition(")")[2].split()[:2]
        yield ProcStat(int(entry.name), name, state, int(ppid))


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for proc in proc_stats():
        children.setdefault(proc.ppid, []).append(proc.pid)
    return children


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (a snapshot)."""
    children = _children_map()
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@final
class RunningClient:
    """One DHCP client process (privsep dhcp or udhcpc) with its stdout/stderr in files."""

    def __init__(self, argv: Sequence[str], directory: Path, label: str) -> None:
        self.argv = list(argv)
        self.label = label
        self.stdout_path = directory / f"{label}.stdout"
        self.stderr_path = directory / f"{label}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.started = time.time()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(
            errors="replace"
        )

    def log(self) -> list[dict[str, Any]]:
        """The JSON log lines written on stderr so far (other lines are skipped)."""
        return events(self.stderr_path.read_text(errors="replace"))

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.output().strip().splitlines()[-lines:])

    def wait_for_log(
        self, match: Callable[[dict[str, Any]], bool], *, timeout: float, what: str
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            found = [e for e in self.log() if match(e)]
            if found:
                return found[-1]
            if self.proc.poll() is not None:
                pytest.fail(
                    f"client exited {self.proc.returncode} waiting for {what}:\n" + self.log_tail()
                )
            return None

        return wait_for(probe, timeout=timeout, what=f"{what}\n{self.log_tail()}")

    def child_pids(self) -> dict[str, int]:
        """Latest pid of each supervised process, from the supervisor's `start` events."""
        pids: dict[str, int] = {}
        for entry in self.log():
            if entry.get("event") == "start" and "child" in entry and "pid" in entry:
                pids[str(entry["child"])] = int(entry["pid"])
        return pids

    def hook_calls(self) -> list[HookCall]:
        """Hook runs recorded by RECORDER_SCRIPT: from privsep's `hook_output` log lines,
        or from udhcpc's stdout."""
        lines = [
            str(e.get("line", ""))
            for e in self.log()
            if e.get("event") == "hook_output" and e.get("stream") == "stdout"
        ]
        if not lines:
            lines = self.stdout_path.read_text(errors="replace").splitlines()
        return parse_hook_lines(lines)

    def wait_for_hooks(
        self, match: Callable[[list[str]], bool], *, timeout: float = 5.0
    ) -> list[HookCall]:
        """Hook runs so far, once their event list satisfies `match` (the hook runs after
        the actuator configured the interface, so it can lag behind the kernel)."""
        found: list[HookCall] = []

        def probe() -> bool:
            found[:] = self.hook_calls()
            return match([c.event for c in found])

        wait_for(
            probe,
            timeout=timeout,
            what=f"hook events of {self.label}; so far {[c.event for c in self.hook_calls()]}"
            f"\n{self.log_tail()}",
        )
        return found

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"client still runs after {timeout} s:\n{self.log_tail()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Send `sig` and wait; then SIGKILL whatever is left of the tree. Returns the
        exit status if the client exited on `sig` by itself."""
        tree = process_tree(self.pid) if self.proc.poll() is None else []
        status: int | None = None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                status = self.proc.wait(timeout)
        else:
            status = self.proc.returncode
        self.kill_tree(tree)
        return status

    def _orphans(self) -> set[int]:
        """Supervised processes (and their children) that outlived the supervisor: they
        are no longer in its tree, but its `start` events name them."""
        found: set[int] = set()
        for pid in set(self.child_pids().values()) | set(self._all_started()):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"privsep" in cmdline and _alive(pid):
                found.update(process_tree(pid))
        return found

    def _all_started(self) -> list[int]:
        return [int(e["pid"]) for e in self.log() if e.get("event") == "start" and "pid" in e]

    def kill_tree(self, known: Sequence[int] = ()) -> None:
        pids = set(known) | self._orphans()
        if self.proc.poll() is None:
            pids.update(process_tree(self.pid))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.01)  # SIGKILL is asynchronous


@final
class ClientSet:
    """Starts DHCP clients for one lab and stops every one of them on exit."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.clients: list[RunningClient] = []
        self.recorder = install_recorder(lab)
        self._count = 0

    def __enter__(self) -> ClientSet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for client in self.clients:
            client.stop(timeout=5.0)

    def state_dir(self, node: Node, name: str = "state") -> Path:
        path = node.directory / name
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def privsep(
        self,
        node: Node,
        *args: str,
        arp_probe: bool = False,
        state_dir: Path | None = None,
        script: Path | None = None,
    ) -> RunningClient:
        """`privsep dhcp IFACE --netns NS ... ARGS`, started from the host namespace, with
        the recording hook unless another `script` is given."""
        self._count += 1
        argv = [str(PRIVSEP), "dhcp", node.interface, "--netns", node.netns]
        argv += ["--state-dir", str(state_dir or self.state_dir(node))]
        argv += ["--resolv-conf", str(node.directory / "resolv.conf")]
        argv += ["--arp-probe" if arp_probe else "--no-arp-probe"]
        argv += ["-s", str(script or self.recorder)]
        argv += args
        client = RunningClient(argv, node.directory, f"privsep-{self._count}")
        self.clients.append(client)
        return client

    def udhcpc(self, node: Node, *args: str) -> RunningClient:
        """busybox udhcpc in the node's namespace, in a clean environment, with the
        recording hook followed by the lab's hook (which configures the interface)."""
        self._count += 1
        hook = install_recorder(self.lab, "hook-recorder-udhcpc.sh", then=node.hook_script)
        env = [f"{k}={v}" for k, v in node.hook_environment().items()]
        argv = node.command(
            ["env", "-i", f"PATH={HOOK_PATH}", *env, BUSYBOX, "udhcpc", "-i", node.interface]
        )
        argv += ["-s", str(hook)]
        client = RunningClient([*argv, *args], node.directory, f"udhcpc-{self._count}")
        self.clients.append(client)
        return client


# ---------------------------------------------------------------- the interface


def address_on(node: Node) -> IPv4Interface | None:
    found = node.addresses()
    return found[0] if found else None


def wait_for_lease_address(
    node: Node, client: RunningClient, *, timeout: float = 15.0
) -> IPv4Interface:
    """The address the client configured (fails early, with its log, if it exits)."""

    def probe() -> IPv4Interface | None:
        found = address_on(node)
        if found is None and client.proc.poll() not in (None, 0):
            pytest.fail(f"client exited {client.proc.returncode}:\n{client.log_tail()}")
        return found

    return wait_for(probe, timeout=timeout, what=f"an address on {node.interface}")


def valid_lft(node: Node, address: IPv4Interface) -> int | None:
    for info in node.address_details():
        if info.interface == address:
            return info.valid_lft
    return None


@final
class AddressMonitor:
    """`ip -n NS monitor address` in the background: every address change, as text."""

    def __init__(self, node: Node, path: Path) -> None:
        self.node = node
        self.path = path
        with path.open("wb") as out:
            self.proc = subprocess.Popen(
                ["ip", "-n", node.netns, "monitor", "address"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # Readiness: a marker address on lo must show up before we rely on the monitor
        # (until it has subscribed, changes go unseen: add it again until one is seen).
        marker = ["127.0.0.9/32", "dev", "lo"]
        deadline = time.monotonic() + 5
        while "127.0.0.9" not in self.text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"ip monitor did not start: {self.text()}")
            subprocess.run(["ip", "-n", node.netns, "addr", "add", *marker], check=True)
            subprocess.run(["ip", "-n", node.netns, "addr", "del", *marker], check=True)
            time.sleep(0.05)  # give the monitor time to print what it saw

    def text(self) -> str:
        return self.path.read_text(errors="replace")

    def deleted(self, address: IPv4Address) -> list[str]:
        pattern = re.compile(rf"^Deleted .*inet {re.escape(str(address))}/")
        return [line for line in self.text().splitlines() if pattern.match(line)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


@contextlib.contextmanager
def address_monitor(node: Node) -> Iterator[AddressMonitor]:
    monitor = AddressMonitor(node, node.directory / f"monitor-{time.monotonic_ns()}.txt")
    try:
        yield monitor
    finally:
        monitor.stop()
