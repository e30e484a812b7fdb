"""Which routes from a DHCP server the client accepts (TunnelVision, CVE-2024-3661).

Policy, applied to options 121 and 249 (RFC 3442) before a Lease exists:
- A route whose prefix is shorter than /8 but is not the default route
  (0.0.0.0/0) is *broad*: 0.0.0.0/1 + 128.0.0.0/1 outranks any default route and
  silently steers all traffic (including a VPN's) to the DHCP server's choice.
  Broad routes are removed unless `allow_broad_routes=True`; either way the
  engine reports them with a `SuspiciousRoutes` event.
- Router 0.0.0.0 means on-link (RFC 3442 §1): kept, the actuator installs the
  route with scope link.
- A route whose router is loopback, multicast, reserved (240/4) or the limited
  broadcast address can never work and is dropped.
Routers from option 3 go through the same router check.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Final

from privsep.services.dhcp._options import ClasslessRoute

DEFAULT_ROUTE: Final = IPv4Network("0.0.0.0/0")
BROAD_PREFIX: Final = 8  # shorter prefixes (other than /0) are suspicious


def usable_router(router: IPv4Address) -> bool:
    """True for an address a route may point at (0.0.0.0 counts: it means on-link)."""
    return not (router.is_loopback or router.is_multicast or router.is_reserved)


def is_broad(route: ClasslessRoute) -> bool:
    """A route wider than /8 that is not the default route."""
    return route.destination.prefixlen < BROAD_PREFIX and route.destination != DEFAULT_ROUTE


def split_routes(
    routes: tuple[ClasslessRoute, ...],
) -> tuple[tuple[ClasslessRoute, ...], tuple[ClasslessRoute, ...]]:
    """(normal, broad) usable routes; routes through an unusable router are left out."""
    usable = [r for r in routes if usable_router(r.router)]
    return (
        tuple(r for r in usable if not is_broad(r)),
        tuple(r for r in usable if is_broad(r)),
    )
