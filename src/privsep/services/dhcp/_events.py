"""What the DHCP client engine tells its driver: frozen, slotted event values.

The driver pulls them with `Client.next_event()` and maps them to actions and
to udhcpc's hook events: LeaseAcquired → `bound`, LeaseRenewed → `renew`,
LeaseExpired / LeaseReleased → `deconfig`, LeaseLost → `nak` then `deconfig`,
LeaseFailed → `leasefail`, AddressConflict (with a lease in use) → `deconfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from privsep.services.dhcp._lease import Lease
from privsep.services.dhcp._options import ClasslessRoute
from privsep.services.dhcp._state import State


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of every engine event."""


@dataclass(frozen=True, slots=True)
class LeaseAcquired(Event):
    """A new lease is bound: configure the interface with it."""

    lease: Lease


@dataclass(frozen=True, slots=True)
class LeaseRenewed(Event):
    """The lease was extended (by renewing or rebinding); options may have changed."""

    lease: Lease


@dataclass(frozen=True, slots=True)
class LeaseExpired(Event):
    """The lease ran out without a renewal: deconfigure. The client restarts at INIT."""

    lease: Lease


@dataclass(frozen=True, slots=True)
class LeaseLost(Event):
    """A server refused the address (DHCPNAK).

    `lease` is the lease to deconfigure, or None when no lease was in use (a NAK
    while REQUESTING). `reason` includes the server's option 56 message, as data.
    `nak_options` are the DHCPNAK's options, raw (udhcpc's `nak` hook shows them).
    """

    lease: Lease | None
    reason: str
    nak_options: tuple[tuple[int, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class LeaseReleased(Event):
    """`release()` gave the lease back: deconfigure. The client is STOPPED."""

    lease: Lease


@dataclass(frozen=True, slots=True)
class LeaseFailed(Event):
    """`discover_tries` DHCPDISCOVERs went unanswered (udhcpc's `leasefail`)."""


@dataclass(frozen=True, slots=True)
class AddressConflict(Event):
    """Another host uses `address` (RFC 5227); the client sent DHCPDECLINE.

    `mac` is the other host's hardware address, or None when the caller
    reported the conflict. If a lease was in use, deconfigure it.
    """

    address: IPv4Address
    mac: bytes | None
    lease_in_use: bool


@dataclass(frozen=True, slots=True)
class PacketDropped(Event):
    """A frame was ignored; `reason` says why (for logs, never for decisions)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Ipv6OnlyPreferred(Event):
    """RFC 8925: the network prefers IPv6-only; DHCPv4 pauses for `wait` seconds."""

    wait: float


@dataclass(frozen=True, slots=True)
class SuspiciousRoutes(Event):
    """Classless routes broader than /8 but not default (TunnelVision, CVE-2024-3661).

    `kept` tells whether they stay in the lease (`allow_broad_routes=True`).
    """

    routes: tuple[ClasslessRoute, ...]
    kept: bool


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    """The engine moved from `old` to `new` (for logs and tests)."""

    old: State
    new: State
