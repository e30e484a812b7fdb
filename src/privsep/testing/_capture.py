"""Packet capture on a lab interface with tcpdump, and a tiny pcap reader to count packets."""

from __future__ import annotations

import contextlib
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, final

from privsep.testing._errors import LabError

if TYPE_CHECKING:
    from privsep.testing._node import Node

DHCP_FILTER = "udp port 67 or udp port 68"
_READY_TIMEOUT = 5.0


@final
@dataclass(frozen=True, slots=True)
class CapturedPacket:
    """One captured Ethernet frame with its kernel timestamp (Unix time)."""

    time: float
    frame: bytes

    def udp(self) -> tuple[int, int, bytes] | None:
        """(source port, destination port, payload) for an unfragmented IPv4/UDP frame."""
        frame = self.frame
        if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
            return None
        ihl = (frame[14] & 0x0F) * 4
        if frame[14 + 9] != 17 or struct.unpack_from("!H", frame, 14 + 6)[0] & 0x3FFF:
            return None  # not UDP, or a fragment
        udp = 14 + ihl
        sport, dport, length = struct.unpack_from("!HHH", frame, udp)
        return sport, dport, frame[udp + 8 : udp + length]


def read_pcap(path: Path) -> tuple[CapturedPacket, ...]:
    """The frames of a classic pcap file (as tcpdump -w writes, µs or ns timestamps)."""
    data = path.read_bytes()
    if len(data) < 24:
        return ()
    magic = data[:4]
    formats = {
        b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
        b"\xa1\xb2\xc3\xd4": (">", 1e-6),
        b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
        b"\xa1\xb2\x3c\x4d": (">", 1e-9),
    }
    if magic not in formats:
        raise LabError(f"{path} is not a pcap file")
    order, unit = formats[magic]
    packets = []
    offset = 24
    while offset + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack_from(f"{order}IIII", data, offset)
        offset += 16
        packets.append(CapturedPacket(sec + frac * unit, data[offset : offset + caplen]))
        offset += caplen
    return tuple(packets)


@final
class Capture:
    """A running `tcpdump --immediate-mode -U -w FILE` on one interface of a node.

    Returns once tcpdump listens. `stop()` ends it, flushing every packet, and returns
    the pcap path; `packets()` / `dhcp_payloads()` read it back.
    """

    __slots__ = ("_proc", "interface", "node", "path")

    def __init__(self, node: Node, interface: str, path: Path, bpf_filter: str) -> None:
        self.node = node
        self.interface = interface
        self.path = path
        log = path.with_suffix(".log")
        # --immediate-mode: else packets in a TPACKET_V3 block are lost when a short
        # capture stops. -Z root: write the file without dropping to user tcpdump.
        argv = ["tcpdump", "--immediate-mode", "-U", "-n", "-s", "0", "-Z", "root"]
        argv += ["-i", interface, "-w", str(path), *bpf_filter.split()]
        with log.open("wb") as out:
            self._proc: subprocess.Popen[bytes] | None = node.popen(
                argv, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + _READY_TIMEOUT
        while "listening on" not in log.read_text(errors="replace"):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise LabError(f"tcpdump on {interface} failed: {log.read_text().strip()}")
            time.sleep(0.002)  # until tcpdump reports that the capture is live

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> Path:
        """Stop the capture (idempotent) and return the pcap path."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self._proc = None
        return self.path

    def packets(self) -> tuple[CapturedPacket, ...]:
        """All captured frames (stops the capture first)."""
        with contextlib.suppress(FileNotFoundError):
            return read_pcap(self.stop())
        return ()

    def dhcp_payloads(self) -> tuple[tuple[float, bytes], ...]:
        """(time, BOOTP payload) of every captured UDP packet from or to port 67/68."""
        found = []
        for packet in self.packets():
            udp = packet.udp()
            if udp and ({udp[0], udp[1]} & {67, 68}):
                found.append((packet.time, udp[2]))
        return tuple(found)
