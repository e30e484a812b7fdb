"""`dhcp-network`: the only process that touches the wire, and it only forwards.

It holds the packet socket the supervisor opened on the interface (classic BPF
for DHCP replies and ARP, locked with SO_LOCK_FILTER) and its channel to the
engine, nothing else: no capability, no file, an empty network namespace.

- Inbound: frames are read with `recvmsg` and `PACKET_AUXDATA`, so the kernel's
  `TP_STATUS_CSUMNOTREADY` flag (a server on this host sending through a veth
  with checksum offload leaves a partial UDP checksum) travels with each frame.
  They wait in a bounded queue until the engine's long poll (`recv`) takes them.
  Before that, `OfferLedger.observe` looks at each one with bounds-checked
  fixed-offset reads (no DHCP decoding here) and remembers the addresses
  offered to us and the servers that sent them: the egress check's ground truth.
- Outbound: every frame the engine hands to `send` goes through
  `EgressPolicy.check` (our MAC, UDP 68 -> 67 BOOTREQUESTs, RFC 5227 ARP; a
  source address, ciaddr or ARP address other than 0.0.0.0 only if a server
  offered it to us, unicast only to a server seen on the wire; no fragments,
  sane size, rate-limited); a refused frame is dropped with an `egress_denied`
  log line. What the engine passes along (candidate, leased, server) only
  narrows this.
- Our MAC and the interface index come from the socket itself (SIOCGIFHWADDR,
  SIOCGIFINDEX on the packet socket, answered in the socket's namespace).
- Interface gone (deleted, or moved to another namespace): the socket is bound to
  an interface that no longer exists and never will again, so sends fail with ENXIO
  and reads see one ENETDOWN, forever. We then log `interface-gone` and exit 1: the
  supervisor restarts the group, opening a new socket by name (a re-created
  interface is picked up, and the actuator looks its new index up), or gives up
  when the interface stays away. A link that is only down also gives ENETDOWN; its
  name still leads to our index (SIOCGIFINDEX), so we keep waiting for it, as before.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import fcntl
import logging
import os
import socket
import struct
import sys
from ipaddress import IPv4Address
from typing import Any, Final

from privsep._log import get_logger, log_event
from privsep.services.dhcp._egress import EgressPolicy
from privsep.services.dhcp._ingress import OfferLedger

SOL_PACKET: Final = 263
PACKET_AUXDATA: Final = 8
TP_STATUS_CSUMNOTREADY: Final = 1 << 3
PACKET_OUTGOING: Final = 4
SIOCGIFHWADDR: Final = 0x8927
SIOCGIFINDEX: Final = 0x8933
_AUXDATA: Final = struct.Struct("=IIIHHHH")  # struct tpacket_auxdata
_IFREQ: Final = struct.Struct("16s16s")
MAX_QUEUE: Final = 256  # frames waiting for the engine; older ones are dropped
MAX_BATCH: Final = 32
_SNAP: Final = 2048  # > any Ethernet frame without jumbo
# A packet socket whose interface was unregistered: ENXIO on send (no device); ENODEV
# where a call names the device. ENETDOWN is not one of them: a link that is down.
_GONE: Final = frozenset({errno.ENXIO, errno.ENODEV})
EXIT_INTERFACE_GONE: Final = 1

_logger = get_logger(__name__)


def interface_identity(sock: socket.socket, ifname: str) -> tuple[bytes, int]:
    """(MAC, ifindex) of `ifname`, asked through `sock` (its namespace)."""
    request = _IFREQ.pack(ifname.encode()[:15], b"")
    hw = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, request)
    mac = hw[16 + 2 : 16 + 8]  # struct sockaddr: sa_family, then the address
    index = fcntl.ioctl(sock.fileno(), SIOCGIFINDEX, request)
    (ifindex,) = struct.unpack_from("=i", index, 16)
    return bytes(mac), int(ifindex)


def _address(value: int) -> IPv4Address | None:
    return IPv4Address(value) if value else None


class Wire:
    """The packet socket: a bounded inbound queue and checked outbound frames.

    `interface`, `ifindex`: what the socket is bound to. Given, a socket error whose
    cause may be the interface's end (`_lost`) is checked against them, and `gone`
    is set once it has ended; nothing is sent or read after that.
    """

    def __init__(
        self,
        sock: socket.socket,
        policy: EgressPolicy,
        *,
        interface: str | None = None,
        ifindex: int = 0,
    ) -> None:
        self.sock = sock
        self.policy = policy
        self.interface = interface
        self.ifindex = ifindex
        self.queue: collections.deque[tuple[bytes, bool]] = collections.deque()
        self.ready = asyncio.Event()
        self.gone = asyncio.Event()
        self.gone_reason = ""
        self.overruns = 0
        self._cmsg = socket.CMSG_SPACE(_AUXDATA.size)
        self._reading = False

    def start(self) -> None:
        self.sock.setblocking(False)
        self.sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)
        self._reading = True

    def _lost(self, exc: OSError) -> bool:
        """True if `exc` came from our interface having ended (then `gone` is set)."""
        if not self.gone.is_set():
            if exc.errno not in _GONE and self._still_there():
                return False
            self.gone_reason = str(exc)
            self.gone.set()
            if self._reading:  # an unbound socket stays readable (its error)
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
                self._reading = False
        return True

    def _still_there(self) -> bool:
        """Does our interface's name still lead to its index (a link that is only down),
        rather than to nothing or to a new interface of that name?"""
        if self.interface is None:
            return True
        try:
            _mac, index = interface_identity(self.sock, self.interface)
        except OSError as exc:
            return exc.errno not in _GONE
        return index == self.ifindex

    def _readable(self) -> None:
        while True:
            try:
                data, ancillary, _flags, address = self.sock.recvmsg(_SNAP, self._cmsg)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if self._lost(exc):
                    return
                log_event(_logger, "recv-failed", logging.WARNING, error=str(exc))
                break
            if isinstance(address, tuple) and len(address) > 2 and address[2] == PACKET_OUTGOING:
                continue
            not_ready = False
            for level, kind, payload in ancillary:
                if level == SOL_PACKET and kind == PACKET_AUXDATA and len(payload) >= 4:
                    (status,) = struct.unpack_from("=I", payload)
                    not_ready = bool(status & TP_STATUS_CSUMNOTREADY)
            # Before the engine sees the frame: an ACK is remembered by the time
            # the engine answers it (ARP probes, announcement, renewals).
            self.policy.ledger.observe(data)
            if len(self.queue) >= MAX_QUEUE:
                self.queue.popleft()
                self.overruns += 1
                if self.overruns in (1, 10, 100) or self.overruns % 1000 == 0:
                    log_event(_logger, "queue-overrun", logging.WARNING, dropped=self.overruns)
            self.queue.append((data, not_ready))
            self.ready.set()

    async def take(self) -> list[tuple[bytes, bool]]:
        while not self.queue:
            self.ready.clear()
            await self.ready.wait()
        return [self.queue.popleft() for _ in range(min(MAX_BATCH, len(self.queue)))]

    def send(self, frame: bytes, candidate: int, leased: int, server: int) -> bool:
        if self.gone.is_set():
            return False
        if not self.policy.permit(
            frame,
            candidate=_address(candidate),
            leased=_address(leased),
            server=_address(server),
        ):
            return False
        try:
            self.sock.send(frame)
        except OSError as exc:
            if not self._lost(exc):
                log_event(
                    _logger, "send-failed", logging.WARNING, error=str(exc), length=len(frame)
                )
            return False
        return True


class LinkService:
    """`Link` of link.capnp (served to dhcp-engine only)."""

    def __init__(self, wire: Wire, mac: bytes, ifindex: int) -> None:
        self._wire = wire
        self._mac = mac
        self._ifindex = ifindex

    async def info(self, **kwargs: Any) -> tuple[bytes, int]:
        return self._mac, self._ifindex

    async def recv(self, **kwargs: Any) -> None:
        batch = await self._wire.take()
        frames = kwargs["_context"].results.init("frames", len(batch))
        for slot, (data, not_ready) in zip(frames, batch, strict=True):
            slot.data = data
            slot.checksumNotReady = not_ready

    async def send(
        self, frame: bytes, candidate: int, leased: int, server: int, **kwargs: Any
    ) -> bool:
        return self._wire.send(bytes(frame), candidate, leased, server)


async def main(ctx: Any) -> None:
    sock = socket.socket(fileno=ctx.fd("packet"))
    interface = ctx.params["interface"]
    mac, ifindex = interface_identity(sock, interface)
    wire = Wire(
        sock, EgressPolicy(mac, ledger=OfferLedger(mac)), interface=interface, ifindex=ifindex
    )
    wire.start()
    log_event(_logger, "network-ready", mac=mac.hex(":"), ifindex=ifindex)
    serving = asyncio.ensure_future(ctx.serve("link", LinkService(wire, mac, ifindex)))
    gone = asyncio.ensure_future(wire.gone.wait())
    try:
        await asyncio.wait([serving, gone], return_when=asyncio.FIRST_COMPLETED)
    finally:  # also on SIGTERM (cancelled): serving goes with us, as it did unwrapped
        gone.cancel()
        if not serving.done():
            serving.cancel()
    if not wire.gone.is_set():
        await serving  # the engine went away: done
        return
    # No socket of ours can ever reach that interface again: let the supervisor start
    # the group over (a new socket, by name), rather than fail every send forever.
    log_event(
        _logger,
        "interface-gone",
        logging.ERROR,
        interface=interface,
        ifindex=ifindex,
        error=wire.gone_reason,
    )
    sys.stderr.flush()
    os._exit(EXIT_INTERFACE_GONE)  # our own status, no traceback (as dhcp-engine exits)
