"""Observation helpers for bench/lease.py: when an address lands, what the wire says,
and which processes (and how much memory) a client left behind.

- `AddressWatch`: a NETLINK_ROUTE socket opened inside the client's network namespace
  (by the supervisor's `in_netns`: a socket keeps the namespace it was made in),
  subscribed to IPv4 address events. Event-driven like `ip monitor address`, without a
  second process: the moment select() wakes is the "configured" time.
- `dhcp_phases`: first client packet and the ACK from a pcap (kernel timestamps, the same
  realtime clock as time.time()).
- process tree helpers: this kernel has no /proc/PID/task/TID/children, so the tree is
  rebuilt from the PPid of every /proc/PID/stat. The bench makes itself a child
  subreaper, so a daemon that double-forks (dhclient) or an orphaned sandbox process is
  re-parented to the bench and stays in its tree, where it can be measured and killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Final, final

from privsep._errors import MalformedPacket
from privsep.sandbox._resources import in_netns
from privsep.services.dhcp._message import decode_message

_PR_SET_CHILD_SUBREAPER: Final = 36
_RTMGRP_IPV4_IFADDR: Final = 0x10
_RTM_NEWADDR: Final = 20
_IFA_ADDRESS: Final = 1
_IFA_LOCAL: Final = 2
_NLMSG: Final = struct.Struct("=IHHII")
_IFADDRMSG: Final = struct.Struct("=BBBBI")
_RTATTR: Final = struct.Struct("=HH")
ACK: Final = 5

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def become_subreaper() -> None:
    """Orphans of our descendants come back to us (not to init), so none escapes."""
    _check(_libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))


@final
class AddressWatch:
    """Reports the first IPv4 address added to `interface` in `netns` after creation."""

    def __init__(self, netns: str, interface: str) -> None:
        made: list[tuple[int, socket.socket]] = []

        def open_in_netns() -> None:
            index = socket.if_nametoindex(interface)
            made.append(
                (index, socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE))
            )

        in_netns(netns, open_in_netns, what="address watch")
        self._index, self._sock = made[0]
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sock.bind((0, _RTMGRP_IPV4_IFADDR))
        self._sock.setblocking(False)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> AddressWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(
        self, deadline: float, proc: subprocess.Popen[bytes] | None = None
    ) -> tuple[float, IPv4Interface] | None:
        """(time.time() at the event, address), or None at the monotonic `deadline` or
        once `proc` has exited without an address having been added."""
        while True:
            if proc is not None and proc.poll() is not None:
                return self._drain(time.time())  # an event may still be queued
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            readable, _, _ = select.select([self._sock], [], [], min(left, 0.05))
            if readable:
                found = self._drain(time.time())
                if found is not None:
                    return found

    def _drain(self, now: float) -> tuple[float, IPv4Interface] | None:
        found = None
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return found
            for address in self._new_addresses(data):
                if found is None:
                    found = (now, address)

    def _new_addresses(self, data: bytes) -> Iterator[IPv4Interface]:
        offset = 0
        while offset + _NLMSG.size <= len(data):
            length, kind, _, _, _ = _NLMSG.unpack_from(data, offset)
            if length < _NLMSG.size:
                return
            body = offset + _NLMSG.size
            if kind == _RTM_NEWADDR and body + _IFADDRMSG.size <= offset + length:
                family, prefix, _, _, index = _IFADDRMSG.unpack_from(data, body)
                if family == socket.AF_INET and index == self._index:
                    attrs = _attributes(data[body + _IFADDRMSG.size : offset + length])
                    raw = attrs.get(_IFA_LOCAL) or attrs.get(_IFA_ADDRESS)
                    if raw is not None and len(raw) == 4:
                        yield IPv4Interface(f"{IPv4Address(raw)}/{prefix}")
            offset += (length + 3) & ~3


def _attributes(data: bytes) -> dict[int, bytes]:
    attrs: dict[int, bytes] = {}
    offset = 0
    while offset + _RTATTR.size <= len(data):
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size:
            break
        attrs.setdefault(kind, data[offset + _RTATTR.size : offset + length])
        offset += (length + 3) & ~3
    return attrs


# ------------------------------------------------------------------ the wire


@final
@dataclass(frozen=True, slots=True)
class DhcpPacket:
    time: float
    from_client: bool  # BOOTREQUEST
    message_type: int | None


def _message_type(payload: bytes) -> int | None:
    with contextlib.suppress(MalformedPacket):
        return decode_message(payload).message_type
    return None


def dhcp_packets(payloads: Iterable[tuple[float, bytes]], mac: str) -> list[DhcpPacket]:
    """The DHCP messages of the client with hardware address `mac`, in capture order,
    from `Capture.dhcp_payloads()`."""
    chaddr = bytes.fromhex(mac.replace(":", ""))
    return [
        DhcpPacket(when, payload[0] == 1, _message_type(payload))
        for when, payload in payloads
        if len(payload) >= 240 and payload[28:34] == chaddr
    ]


def dhcp_phases(packets: list[DhcpPacket], until: float) -> tuple[float | None, float | None]:
    """(time of the client's first message, time of the last ACK before `until`)."""
    first = next((p.time for p in packets if p.from_client), None)
    acks = [p.time for p in packets if not p.from_client and p.message_type == ACK]
    before = [t for t in acks if t <= until]
    return first, (before[-1] if before else (acks[0] if acks else None))


# ------------------------------------------------------------------ processes


def _process_table() -> dict[int, int]:
    """pid -> ppid for every process we can see."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rfind(")") + 2 :].split()
        table[int(entry.name)] = int(fields[1])
    return table


def descendants(root: int | None = None) -> set[int]:
    """Every live process below `root` (default: this process)."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    for pid, ppid in _process_table().items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@final
@dataclass(frozen=True, slots=True)
class ProcessMemory:
    pid: int
    ppid: int
    name: str  # /proc/PID/comm (a sandboxed process may have set it)
    command: str
    rss_kib: int
    pss_kib: int


def process_memory(pids: Iterable[int]) -> list[ProcessMemory]:
    """Rss and Pss (smaps_rollup) of each pid that is still alive and not a zombie."""
    found = []
    for pid in sorted(pids):
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        values = {}
        for line in rollup.splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss") and rest.split():
                values[key] = int(rest.split()[0])
        if "Rss" not in values:
            continue  # a zombie has no mappings
        command = " ".join(a.decode(errors="replace") for a in argv if a)[:160]
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        found.append(ProcessMemory(pid, ppid, name, command, values["Rss"], values.get("Pss", 0)))
    return found


def _reap(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # only our own children; others are not ours to reap


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2 :].split()[0] not in ("Z", "X")


def stop_new_processes(before: set[int], grace: float = 2.0) -> list[int]:
    """SIGTERM, then SIGKILL, every descendant of ours that was not in `before`.

    Returns the pids it had to signal. Only our own descendants are touched."""
    targets = descendants() - before
    if not targets:
        return []
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(targets)
        if not any(_alive(pid) for pid in targets):
            break
        time.sleep(0.01)  # waiting for processes to exit after SIGTERM
    # Orphans adopted meanwhile (a dying parent's children) belong to the client too.
    targets |= descendants() - before
    for pid in targets:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in targets):
        time.sleep(0.01)
    _reap(targets)
    return sorted(targets)
