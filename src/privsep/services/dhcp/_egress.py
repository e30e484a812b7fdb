"""The network process's egress check: the only frames the DHCP client may send.

Linux has no write filter on a packet socket (OpenBSD's dhcpleased locks one
in BPF), so `dhcp-network`, which holds the socket, checks every frame the
engine asks it to send and drops anything else with a log line. The engine is
treated as compromised here: the check assumes nothing it says. Which
addresses are ours comes from `OfferLedger` (`_ingress.py`): the offers
(yiaddr) and servers the network process has itself seen in replies for our
MAC. The `candidate`, `leased` and `server` the engine passes with each frame
only narrow that further, never widen it. The ledger starts empty at every
start of `dhcp-network`; `_ingress.py` explains why that is safe with the
engine's INIT-REBOOT after a restart, and what it costs.

A frame passes when all of this holds:

- Ethernet II, source MAC = ours; no 802.1Q/802.1ad tag; ethertype IPv4 or ARP.
- IPv4/UDP: version 4, IHL 5 (no IP options), total length = the rest of the
  frame (no trailing bytes), frame at most 1514 bytes, not a fragment (MF
  clear, offset 0, reserved bit clear), TTL >= 1, valid IPv4 header and UDP
  checksums (a UDP checksum of 0, "none", is refused: our codec always sets
  one), UDP 68 -> 67, UDP length = IP payload.
  Addresses: source 0.0.0.0 or the address the engine names as leased.
  Destination 255.255.255.255 with the broadcast MAC, or (RENEWING) a
  unicast address with a unicast MAC, only from a leased address that a
  server offered us, to a server seen on the wire, and if the caller names
  the server, that server. (A broadcast from the leased address is how a
  restarted client rebinds before its ledger has an entry.)
  Payload: a well-formed DHCP message (the codec's strict decoder) that is a
  BOOTREQUEST for Ethernet (htype 1, hlen 6) with chaddr = our MAC, ciaddr
  0.0.0.0 or the leased address, and a client message type (DISCOVER,
  REQUEST, DECLINE, RELEASE, INFORM).
- ARP (RFC 5227): an Ethernet/IPv4 request (op 1; replies are the kernel's
  job) to the broadcast MAC, sender MAC = ours, target MAC zero, either a
  probe (sender IP 0.0.0.0, target IP = an address offered to us that the
  engine names as the candidate) or an announcement (sender IP = target IP =
  an address offered to us that the engine names as candidate or leased).
  42 bytes, or padded with zeros to the 60-byte Ethernet minimum.
- At most `max_per_second` frames pass per second (a token bucket holding
  one second's worth), so even a stream of valid frames cannot flood the link.

Anything else raises `EgressDenied` with a precise reason.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Final

from privsep._errors import MalformedPacket, PrivsepError
from privsep._log import get_logger, log_event
from privsep.services.dhcp._frames import (
    BROADCAST_MAC,
    ETH_P_ARP,
    ETH_P_IP,
    IPPROTO_UDP,
    internet_checksum,
)
from privsep.services.dhcp._ingress import OfferLedger
from privsep.services.dhcp._message import (
    BOOTREQUEST,
    CLIENT_PORT,
    SERVER_PORT,
    decode_message,
)
from privsep.services.dhcp._options import MessageType

_logger = get_logger(__name__)

ETH_HEADER: Final = 14
MAX_FRAME: Final = 1500 + ETH_HEADER  # MTU-sized IPv4 packet, no FCS
MIN_ETHERNET_FRAME: Final = 60  # without FCS; shorter frames are padded
_BOOTP_MINIMUM: Final = 240  # fixed header + magic cookie
MIN_DHCP_FRAME: Final = ETH_HEADER + 20 + 8 + _BOOTP_MINIMUM
_ARP_SIZE: Final = 28

_ETH: Final = struct.Struct("!6s6sH")
_IP: Final = struct.Struct("!BBHHHBBH4s4s")
_UDP: Final = struct.Struct("!HHHH")
_ARP: Final = struct.Struct("!HHBBH6s4s6s4s")

_ETHERTYPE_NAMES: Final = {
    0x86DD: "IPv6",
    0x8100: "802.1Q VLAN tag",
    0x88A8: "802.1ad VLAN tag",
    0x9100: "VLAN tag",
}
_CLIENT_TYPES: Final = frozenset(
    {
        MessageType.DISCOVER,
        MessageType.REQUEST,
        MessageType.DECLINE,
        MessageType.RELEASE,
        MessageType.INFORM,
    }
)
_ANY: Final = IPv4Address(0)
_BROADCAST: Final = IPv4Address("255.255.255.255")


class EgressDenied(PrivsepError):
    """A frame the network process refuses to send; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class RateLimiter:
    """A token bucket: `rate` frames per second, bursts of at most `burst`.

    `admit(now)` takes a token or raises `EgressDenied`. `now` is a monotonic
    clock in seconds, injected so tests drive it.
    """

    rate: float = 50.0
    burst: float | None = None
    _tokens: float = field(init=False)
    _last: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError("rate must be positive")
        if self.burst is None:
            self.burst = self.rate
        if not self.burst >= 1:
            raise ValueError("burst must be at least 1")
        self._tokens = self.burst

    def admit(self, now: float) -> None:
        assert self.burst is not None
        if self._last is not None and now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        if self._last is None or now > self._last:
            self._last = now
        if self._tokens < 1 - 1e-9:  # float refills: 0.1 s * 50 may give 4.999...
            raise EgressDenied(f"rate limit: more than {self.rate:g} frames per second")
        self._tokens -= 1


class EgressPolicy:
    """Checks frames on their way out of `dhcp-network` (see the module docstring)."""

    def __init__(
        self,
        our_mac: bytes,
        *,
        ledger: OfferLedger | None = None,
        max_per_second: float = 50.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`ledger`: what the wire told us (an empty one for `our_mac` when omitted)."""
        if not isinstance(our_mac, bytes) or len(our_mac) != 6:
            raise ValueError("our_mac must be 6 bytes")
        if our_mac[0] & 1 or our_mac == bytes(6):
            raise ValueError("our_mac must be a unicast address")
        if ledger is None:
            ledger = OfferLedger(our_mac)
        elif ledger.our_mac != our_mac:
            raise ValueError("the ledger watches replies for another MAC")
        self.our_mac = our_mac
        self.ledger = ledger
        self._limiter = RateLimiter(max_per_second)
        self._clock = clock

    def check(
        self,
        frame: bytes,
        *,
        candidate: IPv4Address | None,
        leased: IPv4Address | None,
        server: IPv4Address | None = None,
    ) -> None:
        """Raise `EgressDenied` unless `frame` may be sent now.

        `candidate` is the address being probed (RFC 5227), `leased` the bound
        address; `server`, when given, is the only unicast destination allowed.
        All three come from the engine and only narrow what the ledger allows.
        """
        frame = bytes(frame)
        if len(frame) < ETH_HEADER:
            raise EgressDenied(f"truncated frame: {len(frame)} bytes, no Ethernet header")
        dst_mac, src_mac, ethertype = _ETH.unpack_from(frame)
        if src_mac != self.our_mac:
            raise EgressDenied(
                f"source MAC {src_mac.hex(':')} is not ours ({self.our_mac.hex(':')})"
            )
        if ethertype == ETH_P_IP:
            self._check_ipv4(frame, dst_mac, leased, server)
        elif ethertype == ETH_P_ARP:
            self._check_arp(frame, dst_mac, candidate, leased)
        else:
            name = _ETHERTYPE_NAMES.get(ethertype, "not IPv4 or ARP")
            raise EgressDenied(f"ethertype {ethertype:#06x} ({name})")
        self._limiter.admit(self._clock())

    def permit(
        self,
        frame: bytes,
        *,
        candidate: IPv4Address | None,
        leased: IPv4Address | None,
        server: IPv4Address | None = None,
    ) -> bool:
        """`check`, but a denial becomes a log line and False (the network process's loop)."""
        try:
            self.check(frame, candidate=candidate, leased=leased, server=server)
        except EgressDenied as exc:
            log_event(
                _logger,
                "egress_denied",
                logging.WARNING,
                reason=exc.reason,
                length=len(frame),
                head=bytes(frame[:42]).hex(),
            )
            return False
        return True

    # -- IPv4/UDP/DHCP ------------------------------------------------------------

    def _check_ipv4(
        self,
        frame: bytes,
        dst_mac: bytes,
        leased: IPv4Address | None,
        server: IPv4Address | None,
    ) -> None:
        if len(frame) > MAX_FRAME:
            raise EgressDenied(f"oversized frame: {len(frame)} bytes, the limit is {MAX_FRAME}")
        if len(frame) < MIN_DHCP_FRAME:
            raise EgressDenied(
                f"truncated frame: {len(frame)} bytes, a DHCP frame needs {MIN_DHCP_FRAME}"
            )
        ip = ETH_HEADER
        (ver_ihl, _tos, total, _ident, frag, ttl, proto, _csum, src, dst) = _IP.unpack_from(
            frame, ip
        )
        if ver_ihl >> 4 != 4:
            raise EgressDenied(f"IP version {ver_ihl >> 4} in an IPv4 frame")
        if ver_ihl & 0x0F != 5:
            raise EgressDenied(f"IP header length {(ver_ihl & 0x0F) * 4}: IP options")
        if total != len(frame) - ip:
            raise EgressDenied(
                f"IP total length {total} does not match the frame ({len(frame) - ip})"
            )
        if frag & 0x8000:
            raise EgressDenied("IP reserved flag set")
        if frag & 0x2000 or frag & 0x1FFF:
            raise EgressDenied(
                f"IP fragment (more-fragments={frag >> 13 & 1}, offset={(frag & 0x1FFF) * 8})"
            )
        if ttl == 0:
            raise EgressDenied("IP TTL 0")
        if internet_checksum(frame[ip : ip + 20]):
            raise EgressDenied("bad IPv4 header checksum")
        if proto != IPPROTO_UDP:
            name = {6: "TCP", 1: "ICMP"}.get(proto, "not UDP")
            raise EgressDenied(f"IP protocol {proto} ({name})")
        self._check_addresses(IPv4Address(src), IPv4Address(dst), dst_mac, leased, server)

        udp = ip + 20
        src_port, dst_port, udp_length, udp_csum = _UDP.unpack_from(frame, udp)
        if (src_port, dst_port) != (CLIENT_PORT, SERVER_PORT):
            raise EgressDenied(f"UDP ports {src_port}->{dst_port}, only 68->67 is allowed")
        if udp_length != total - 20:
            raise EgressDenied(f"UDP length {udp_length}, IP payload is {total - 20}")
        if udp_csum == 0:
            raise EgressDenied("UDP checksum missing (0)")
        pseudo = src + dst + struct.pack("!BBH", 0, IPPROTO_UDP, udp_length)
        if internet_checksum(pseudo + frame[udp:]):
            raise EgressDenied("bad UDP checksum")
        self._check_dhcp(frame[udp + 8 :], leased)

    def _check_addresses(
        self,
        src: IPv4Address,
        dst: IPv4Address,
        dst_mac: bytes,
        leased: IPv4Address | None,
        server: IPv4Address | None,
    ) -> None:
        if src not in (_ANY, leased):
            raise EgressDenied(f"source IP {src} is neither 0.0.0.0 nor the leased address")
        if dst == _BROADCAST:
            # A broadcast from the leased address needs no ledger entry: it is how a
            # restarted client (empty ledger) REBINDs when its server stayed silent at
            # INIT-REBOOT. It claims no more than a DECLINE's option 50 always could.
            if dst_mac != BROADCAST_MAC:
                raise EgressDenied(f"broadcast IP to unicast MAC {dst_mac.hex(':')}")
            return
        if src == _ANY:
            raise EgressDenied(f"unicast to {dst} from 0.0.0.0 (only a bound client unicasts)")
        if not self.ledger.offered(src):
            raise EgressDenied(f"unicast from {src}, an address no server offered us")
        if (
            dst.is_loopback
            or dst.is_multicast
            or dst.is_reserved
            or int(dst) >> 24 == 0  # 0.0.0.0/8, "this network"
            or dst == leased
        ):
            raise EgressDenied(f"destination IP {dst} is not a unicast server address")
        if not self.ledger.is_server(dst):
            raise EgressDenied(f"destination IP {dst} is not a server seen on the wire")
        if server is not None and dst != server:
            raise EgressDenied(f"destination IP {dst} is not the server {server}")
        if dst_mac[0] & 1:
            raise EgressDenied(f"unicast IP to group MAC {dst_mac.hex(':')}")

    def _check_dhcp(self, payload: bytes, leased: IPv4Address | None) -> None:
        try:
            message = decode_message(payload)
        except MalformedPacket as exc:
            raise EgressDenied(f"payload is not a valid DHCP message: {exc}") from None
        if message.op != BOOTREQUEST:
            raise EgressDenied(f"BOOTP op {message.op}: a client only sends BOOTREQUEST (1)")
        if message.htype != 1 or len(message.chaddr) != 6:
            raise EgressDenied(
                f"hardware type {message.htype}/length {len(message.chaddr)}, not Ethernet"
            )
        if message.chaddr != self.our_mac:
            raise EgressDenied(f"chaddr {message.chaddr.hex(':')} is not our MAC")
        if message.ciaddr not in (_ANY, leased):
            raise EgressDenied(f"ciaddr {message.ciaddr} is neither 0.0.0.0 nor the leased address")
        kind = message.message_type
        if kind not in _CLIENT_TYPES:
            shown = kind.name if kind is not None else "missing"
            raise EgressDenied(f"DHCP message type {shown} is not one a client sends")

    # -- ARP ----------------------------------------------------------------------

    def _check_arp(
        self,
        frame: bytes,
        dst_mac: bytes,
        candidate: IPv4Address | None,
        leased: IPv4Address | None,
    ) -> None:
        end = ETH_HEADER + _ARP_SIZE
        if len(frame) < end:
            raise EgressDenied(f"truncated ARP frame: {len(frame)} bytes")
        if len(frame) > MIN_ETHERNET_FRAME:
            raise EgressDenied(f"oversized ARP frame: {len(frame)} bytes")
        if any(frame[end:]):
            raise EgressDenied("ARP frame padding is not zero")
        htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(frame, ETH_HEADER)
        if (htype, ptype, hlen, plen) != (1, ETH_P_IP, 6, 4):
            raise EgressDenied("ARP for something other than Ethernet/IPv4")
        if op != 1:
            raise EgressDenied(f"ARP op {op}: only requests (probes, announcements) are sent")
        if dst_mac != BROADCAST_MAC:
            raise EgressDenied(f"ARP request to {dst_mac.hex(':')}, not broadcast")
        if sha != self.our_mac:
            raise EgressDenied(f"ARP sender MAC {sha.hex(':')} is not ours")
        if tha != bytes(6):
            raise EgressDenied(f"ARP target MAC {tha.hex(':')} is not zero")
        sender, target = IPv4Address(spa), IPv4Address(tpa)
        if sender == _ANY:
            if not self.ledger.offered(target):
                raise EgressDenied(f"ARP probe for {target}, an address no server offered us")
            if candidate is None or target != candidate:
                raise EgressDenied(f"ARP probe for {target}, not our candidate {candidate}")
            return
        if sender != target:
            raise EgressDenied(
                f"ARP sender {sender} / target {target}: not an announcement of our address"
            )
        if not self.ledger.offered(sender):
            raise EgressDenied(f"ARP announcement of {sender}, an address no server offered us")
        if sender not in (candidate, leased):
            raise EgressDenied(
                f"ARP sender {sender} / target {target}: not an announcement of our address"
            )
