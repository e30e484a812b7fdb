"""What servers told us on the wire: the ground truth of the network process's egress check.

`EgressPolicy` must not take the engine's word for which addresses are ours
(the engine parses hostile input and is treated as compromised). Instead,
`dhcp-network` remembers what it has itself received: `Wire` hands every
inbound frame to `OfferLedger.observe` before queueing it for the engine, and
the policy asks the ledger whether an address was offered to us, or a server
seen, before it lets a frame use it.

What is remembered. A frame counts only when it is, at fixed offsets:
Ethernet II (no VLAN tag), IPv4 with IHL 5 (no options), a valid header
checksum, not a fragment, total length within the frame, UDP from port 67 to
68 with a length equal to the IP payload, a BOOTREPLY (op 2) for Ethernet
(htype 1, hlen 6) with chaddr = our MAC, and the DHCP magic cookie. Then:

- `yiaddr`, when it is a usable unicast address (not 0/8, 127/8, 224/4 or
  240/4, as the engine requires of a lease), is an *offer*. A reply that
  offers nothing (a NAK has yiaddr 0) teaches nothing, not even its server.
- The IPv4 source of the reply and the server identifier (option 54), when
  usable, are *servers*. Option 54 is found by a bounded walk of the main
  options area (each step moves forward; every read is bounds-checked); a
  walk that runs off its area, or a 54 that is repeated or not 4 bytes long,
  makes the whole frame forgotten: the engine's decoder refuses those too.
  Option 54 in an overloaded sname/file field is not looked for; the IP
  source still counts. `siaddr` is not a server here: it names the next
  (boot) server, and a DHCP client never unicasts to it.

The UDP checksum is not verified (the kernel may not have filled it in yet,
TP_STATUS_CSUMNOTREADY); it would not prove who sent the frame anyway. Only
whoever can put a reply for our MAC on the link can add entries, which is the
same party the DHCP protocol itself trusts.

Bounds. At most `capacity` (16) offers and 16 servers, each kept until
evicted: seeing an entry again makes it the newest, a new one evicts the
oldest. There is no time limit. A lease may be infinite, or last longer than
any limit we would pick, and its RELEASE or next renewal must still pass; an
old offer grants at most ARP for, and a source address of, something a server
once gave us. Every renewal ACK refreshes the lease's entry, so only a burst
of 16 other replies for our MAC between two renewals (a rogue on the link,
which can also NAK us) evicts it; the cost is then a refused renewal, not a
wider egress.

Restarts. The ledger lives in the `dhcp-network` process and starts empty.
It is not seeded from anything: the engine's word is what this replaces, the
actuator's state came from the engine too, and the interface's address
(SIOCGIFADDR) is outside the ioctls the network process's seccomp filter
allows. That is enough, because of how the engine resumes: the supervisor
restarts the whole group, and an engine with a saved, unexpired lease starts
with INIT-REBOOT, a broadcast DHCPREQUEST from 0.0.0.0 with ciaddr 0 (the
address only in option 50), which needs no ledger entry. The server's ACK
fills the ledger before the engine sees it, so the ARP probes and the
announcement that follow, and later unicast renewals, pass. If no server
answers the INIT-REBOOT, the engine keeps its saved lease (RFC 2131 §3.2):
its RENEW at T1 (unicast from the leased address) is refused, as there is no
ledger entry for the address or the server, but its REBIND at T2 is a
broadcast, which the egress check lets out from the engine's leased address
without a ledger entry (it claims no more than a DECLINE's option 50 always
could); the server's ACK then fills the ledger. So a server silent at the
restart and back before the lease expires costs nothing. ARP announcements after a restart
are refused until an ACK is seen: there is nothing to announce then.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from ipaddress import IPv4Address
from typing import Final, final

from privsep.services.dhcp._frames import ETH_P_IP, IPPROTO_UDP, internet_checksum
from privsep.services.dhcp._message import BOOTREPLY, CLIENT_PORT, MAGIC_COOKIE, SERVER_PORT

LEDGER_CAPACITY: Final = 16

# Fixed offsets in an Ethernet II / IPv4 (IHL 5) / UDP / BOOTP frame.
_ETHERTYPE: Final = 12
_IP: Final = 14
_IP_SIZE: Final = 20
_UDP: Final = _IP + _IP_SIZE  # 34
_BOOTP: Final = _UDP + 8  # 42
_YIADDR: Final = _BOOTP + 16
_CHADDR: Final = _BOOTP + 28
_COOKIE: Final = _BOOTP + 236
_OPTIONS: Final = _COOKIE + len(MAGIC_COOKIE)  # 282: the shortest frame we look at
_IPV4_ETHERTYPE: Final = ETH_P_IP.to_bytes(2, "big")
_SERVER_ID: Final = 54
_PAD: Final = 0
_END: Final = 255

_IP_HEADER: Final = struct.Struct("!BBHHHBBH4s4s")
_UDP_HEADER: Final = struct.Struct("!HHHH")


def _usable(packed: bytes) -> bool:
    """A unicast address a host may use: not 0/8, 127/8, 224/4 or 240/4 (the engine's rule)."""
    first = packed[0]
    return first not in (0, 127) and first < 224


def _server_identifier(frame: bytes, start: int, end: int) -> bytes | None:
    """Option 54 in `frame[start:end]`: its 4 bytes, b"" when absent, None when malformed."""
    found = b""
    pos = start
    while pos < end:  # every step moves `pos` forward: at most end - start steps
        code = frame[pos]
        if code == _PAD:
            pos += 1
            continue
        if code == _END:
            break
        if pos + 1 >= end:
            return None
        body = pos + 2
        stop = body + frame[pos + 1]
        if stop > end:
            return None
        if code == _SERVER_ID:
            if found or stop - body != 4:
                return None
            found = frame[body:stop]
        pos = stop
    return found


@final
class OfferLedger:
    """Offers (yiaddr) and servers seen in replies for our MAC (see the module docstring).

    `observe(frame)` never raises, whatever the bytes; `offered(a)` and
    `is_server(a)` answer the egress check. Both sets are bounded by `capacity`.
    """

    def __init__(self, our_mac: bytes, *, capacity: int = LEDGER_CAPACITY) -> None:
        if not isinstance(our_mac, bytes) or len(our_mac) != 6:
            raise ValueError("our_mac must be 6 bytes")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.our_mac = our_mac
        self.capacity = capacity
        # Packed addresses, oldest first; the values are unused.
        self._offers: OrderedDict[bytes, None] = OrderedDict()
        self._servers: OrderedDict[bytes, None] = OrderedDict()

    @property
    def offers(self) -> tuple[IPv4Address, ...]:
        """The addresses offered to us, oldest first."""
        return tuple(IPv4Address(a) for a in self._offers)

    @property
    def servers(self) -> tuple[IPv4Address, ...]:
        """The server addresses seen, oldest first."""
        return tuple(IPv4Address(a) for a in self._servers)

    def offered(self, address: IPv4Address) -> bool:
        return address.packed in self._offers

    def is_server(self, address: IPv4Address) -> bool:
        return address.packed in self._servers

    def observe(self, frame: bytes) -> bool:
        """Remember what `frame` offers us; True if it was a usable reply for our MAC."""
        found = self._read(bytes(frame))  # bytes: slices become hashable keys
        if found is None:
            return False
        offer, servers = found
        self._remember(self._offers, offer)
        for server in servers:
            self._remember(self._servers, server)
        return True

    def _remember(self, entries: OrderedDict[bytes, None], packed: bytes) -> None:
        if packed in entries:
            entries.move_to_end(packed)
            return
        entries[packed] = None
        while len(entries) > self.capacity:
            entries.popitem(last=False)

    def _read(self, frame: bytes) -> tuple[bytes, list[bytes]] | None:
        """(yiaddr, servers) of a reply for us, or None; fixed offsets, each one bounds-checked."""
        size = len(frame)
        if size < _OPTIONS or frame[_ETHERTYPE : _ETHERTYPE + 2] != _IPV4_ETHERTYPE:
            return None
        (ver_ihl, _tos, total, _ident, frag, _ttl, proto, _csum, src, _dst) = (
            _IP_HEADER.unpack_from(frame, _IP)
        )
        if ver_ihl != 0x45 or proto != IPPROTO_UDP or frag & 0x3FFF:
            return None  # not IPv4, IP options, not UDP, or a fragment
        end = _IP + total
        if end > size or end < _OPTIONS:
            return None
        if internet_checksum(frame[_IP:_UDP]):
            return None
        src_port, dst_port, udp_length, _ = _UDP_HEADER.unpack_from(frame, _UDP)
        if (src_port, dst_port) != (SERVER_PORT, CLIENT_PORT) or udp_length != total - _IP_SIZE:
            return None
        if frame[_BOOTP : _BOOTP + 3] != bytes((BOOTREPLY, 1, 6)):  # op, htype, hlen
            return None
        if frame[_CHADDR : _CHADDR + 6] != self.our_mac:
            return None
        if frame[_COOKIE:_OPTIONS] != MAGIC_COOKIE:
            return None
        yiaddr = frame[_YIADDR : _YIADDR + 4]
        if not _usable(yiaddr):
            return None
        server_id = _server_identifier(frame, _OPTIONS, end)
        if server_id is None:
            return None
        servers = [a for a in (src, server_id) if a and _usable(a)]
        return yiaddr, servers
