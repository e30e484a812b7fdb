"""The Lease: a validated, immutable DHCP lease, and its strict lease-file format.

A Lease is the only thing that crosses from the engine to the actuator, so it
is checked when built: every field has one type and a range, and anything else
raises `MalformedLease`. Strings (hostname, domain, search names) are kept as
the server sent them, shell metacharacters included: they are inert data, and
whoever hands them to a hook passes them as environment values, never code.

Times: `acquired_at` is on the driver's clock (whatever `now` the engine was
given) and `t1`, `t2` are offsets from it. A driver that saves leases across
restarts must use one clock for both runs (wall time, or CLOCK_BOOTTIME if a
reboot should invalidate the lease).

Lease file (`to_bytes`/`from_bytes`): one JSON object, `"version": 1`, every
key required, no unknown key, addresses as dotted quads, MACs as `aa:bb:..`,
`extra` as `[[code, "hex"], ...]`. Parsing rejects anything else.

What the actuator configures (`host_problem`, `dns_problem`, `router_problem`,
`destination_problem` and the MAX_* counts) is decided here, once, for both
sides: the actuator refuses a request that breaks a rule (it trusts nothing),
and the engine leaves such an item out of what it asks for, so one unusable DNS
server or route costs only itself, never the lease. A Lease itself keeps what
the server sent (the hook sees it all).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from ipaddress import AddressValueError, IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Final

from privsep._errors import PrivsepError
from privsep.services.dhcp._options import ClasslessRoute
from privsep.services.dhcp._routes_policy import BROAD_PREFIX  # the engine's TunnelVision rule

LEASE_FILE_VERSION: Final = 1
INFINITE: Final = 0xFFFFFFFF
MAX_FILE_SIZE: Final = 256 * 1024
MAX_ITEMS: Final = 255  # no option can carry more list items than bytes
MAX_STRING: Final = 1024  # option 119 (RFC 3396-concatenated) names can be long; bound anyway
MAX_ROUTERS: Final = 8  # what the actuator configures at most (docs/dhcp-actuator.md)
MAX_ROUTES: Final = 64
MAX_NAME: Final = 253  # characters of a domain or search name, a final dot included

# Where no host, router or DNS server can be: never unicast (0/8, 127/8, 224/4, the
# limited broadcast), reserved (240/4: no real server hands it out), or link-local
# (RFC 3927 forbids DHCP there).
_NOT_HOSTS: Final = (
    (IPv4Network("0.0.0.0/8"), "in 0.0.0.0/8 (this network)"),
    (IPv4Network("127.0.0.0/8"), "loopback"),
    (IPv4Network("169.254.0.0/16"), "link-local (RFC 3927 forbids DHCP there)"),
    (IPv4Network("224.0.0.0/4"), "multicast"),
    (IPv4Network("255.255.255.255/32"), "the limited broadcast address"),
    (IPv4Network("240.0.0.0/4"), "reserved (240/4)"),
)
_NOT_DESTINATIONS: Final = (
    (IPv4Network("127.0.0.0/8"), "loopback"),
    (IPv4Network("224.0.0.0/4"), "multicast"),
    (IPv4Network("240.0.0.0/4"), "reserved (240/4)"),
)
_DEFAULT_ROUTE: Final = IPv4Network("0.0.0.0/0")
_LINK_LOCAL: Final = IPv4Network("169.254.0.0/16")


class MalformedLease(PrivsepError, ValueError):
    """A Lease value or lease file that breaks the rules above."""


def host_problem(address: IPv4Address) -> str | None:
    """Why `address` cannot be our address, a router or a DNS server; None if it can."""
    for network, why in _NOT_HOSTS:
        if address in network:
            return why
    return None


def dns_problem(server: IPv4Address) -> str | None:
    """Why `server` cannot be a DNS server; None if it can. A link-local one can: it is
    reachable on the link, and clouds hand one out (GCE: 169.254.169.254)."""
    if server in _LINK_LOCAL:
        return None
    return host_problem(server)


def router_problem(router: IPv4Address, interface: IPv4Interface) -> str | None:
    """Why `router` cannot be a gateway for our `interface` (address/prefix); None if it
    can. (A classless route's router 0.0.0.0 means on-link: not a gateway, not checked.)"""
    problem = host_problem(router)
    if problem:
        return f"is {problem}"
    if router == interface.ip:
        return "is our own address"
    network = interface.network
    if network.prefixlen <= 30 and router in (network.network_address, network.broadcast_address):
        return f"is the network or broadcast address of {network}"
    return None


def destination_problem(destination: IPv4Network, *, allow_broad: bool = False) -> str | None:
    """Why a route to `destination` cannot be installed; None if it can. Wider than
    /BROAD_PREFIX but not the default route: TunnelVision (CVE-2024-3661), refused
    unless `allow_broad`."""
    if destination == _DEFAULT_ROUTE:
        return None
    for network, why in _NOT_DESTINATIONS:
        if destination.subnet_of(network):
            return f"is {why}"
    if destination.prefixlen < BROAD_PREFIX and not allow_broad:
        return f"is wider than /{BROAD_PREFIX} (TunnelVision); not allowed by policy"
    return None


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise MalformedLease(message)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)  # type: ignore[arg-type]


def _check_addresses(name: str, value: object) -> None:
    _check(
        isinstance(value, tuple)
        and len(value) <= MAX_ITEMS
        and all(isinstance(a, IPv4Address) for a in value),
        f"{name} must be a tuple of at most {MAX_ITEMS} IPv4Address",
    )


def _check_string(name: str, value: object) -> None:
    _check(
        isinstance(value, str) and 0 < len(value) <= MAX_STRING and "\x00" not in value,
        f"{name} must be a non-empty string without NUL, at most {MAX_STRING} characters",
    )


def _check_optional_string(name: str, value: object) -> None:
    if value is not None:
        _check_string(name, value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """One bound DHCP lease. `lease_time == INFINITE` means no T1, T2 or expiry.

    `routers` is empty when classless routes (121/249) came with the lease: RFC
    3442 says a client that uses them ignores option 3. A classless route with
    router 0.0.0.0 is on-link. `extra` holds, raw, every option no typed field
    carries (53, 58 and 59 included, as udhcpc's hook sees them; option 3 when
    classless routes replaced it), for the hook's variables; never 121 or 249,
    which only reach anyone through the route policy. The actuator configures
    from the typed fields only.
    """

    address: IPv4Address
    prefix_len: int
    server_id: IPv4Address
    server_mac: bytes
    lease_time: int
    t1: float | None
    t2: float | None
    acquired_at: float
    routers: tuple[IPv4Address, ...] = ()
    classless_routes: tuple[ClasslessRoute, ...] = ()
    dns: tuple[IPv4Address, ...] = ()
    domain: str | None = None
    search: tuple[str, ...] = ()
    hostname: str | None = None
    mtu: int | None = None
    ntp: tuple[IPv4Address, ...] = ()
    broadcast: IPv4Address | None = None
    extra: tuple[tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        _check(isinstance(self.address, IPv4Address), "address must be an IPv4Address")
        _check(
            not (
                self.address.is_unspecified
                or self.address.is_loopback
                or self.address.is_multicast
                or self.address.is_reserved
            ),
            f"address {self.address} cannot be a host address",
        )
        _check(_is_int(self.prefix_len) and 1 <= self.prefix_len <= 32, "prefix_len must be 1..32")
        _check(isinstance(self.server_id, IPv4Address), "server_id must be an IPv4Address")
        _check(
            isinstance(self.server_mac, bytes) and len(self.server_mac) == 6,
            "server_mac must be 6 bytes",
        )
        _check(
            _is_int(self.lease_time) and 1 <= self.lease_time <= INFINITE,
            "lease_time must be 1..0xffffffff",
        )
        _check(_is_number(self.acquired_at), "acquired_at must be a finite number")
        if self.lease_time == INFINITE:
            _check(self.t1 is None and self.t2 is None, "an infinite lease has no T1/T2")
        else:
            _check(
                _is_number(self.t1)
                and _is_number(self.t2)
                and 0 < self.t1 < self.t2 < self.lease_time,  # type: ignore[operator]
                "T1 and T2 must satisfy 0 < T1 < T2 < lease_time",
            )
        _check_addresses("routers", self.routers)
        _check_addresses("dns", self.dns)
        _check_addresses("ntp", self.ntp)
        _check(
            isinstance(self.classless_routes, tuple)
            and len(self.classless_routes) <= MAX_ITEMS
            and all(
                isinstance(r, ClasslessRoute)
                and isinstance(r.destination, IPv4Network)
                and isinstance(r.router, IPv4Address)
                for r in self.classless_routes
            ),
            "classless_routes must be a tuple of ClasslessRoute",
        )
        _check_optional_string("domain", self.domain)
        _check_optional_string("hostname", self.hostname)
        _check(
            isinstance(self.search, tuple) and len(self.search) <= MAX_ITEMS,
            "search must be a tuple of strings",
        )
        for name in self.search:
            _check_string("search", name)
        _check(
            self.mtu is None or (_is_int(self.mtu) and 68 <= self.mtu <= 65535),
            "mtu must be 68..65535",
        )
        _check(
            self.broadcast is None or isinstance(self.broadcast, IPv4Address),
            "broadcast must be an IPv4Address",
        )
        _check(
            isinstance(self.extra, tuple)
            and all(
                isinstance(item, tuple)
                and len(item) == 2
                and _is_int(item[0])
                and 1 <= item[0] <= 254
                and isinstance(item[1], bytes)
                and len(item[1]) <= 0xFFFF
                for item in self.extra
            ),
            "extra must be a tuple of (code 1..254, bytes)",
        )
        codes = [code for code, _ in self.extra]
        _check(codes == sorted(set(codes)), "extra codes must be unique and sorted")

    # -- derived values ------------------------------------------------------------

    @property
    def infinite(self) -> bool:
        return self.lease_time == INFINITE

    @property
    def interface(self) -> IPv4Interface:
        """Address with prefix, as the actuator configures it."""
        return IPv4Interface((self.address, self.prefix_len))

    @property
    def t1_at(self) -> float | None:
        return None if self.t1 is None else self.acquired_at + self.t1

    @property
    def t2_at(self) -> float | None:
        return None if self.t2 is None else self.acquired_at + self.t2

    @property
    def expires_at(self) -> float | None:
        return None if self.infinite else self.acquired_at + self.lease_time

    # -- lease file ----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The lease file: canonical JSON (sorted keys, ASCII only, one line + newline)."""
        doc: dict[str, Any] = {
            "version": LEASE_FILE_VERSION,
            "address": str(self.address),
            "prefix_len": self.prefix_len,
            "server_id": str(self.server_id),
            "server_mac": self.server_mac.hex(":"),
            "lease_time": self.lease_time,
            "t1": self.t1,
            "t2": self.t2,
            "acquired_at": self.acquired_at,
            "routers": [str(a) for a in self.routers],
            "classless_routes": [
                {"destination": str(r.destination), "router": str(r.router)}
                for r in self.classless_routes
            ],
            "dns": [str(a) for a in self.dns],
            "domain": self.domain,
            "search": list(self.search),
            "hostname": self.hostname,
            "mtu": self.mtu,
            "ntp": [str(a) for a in self.ntp],
            "broadcast": None if self.broadcast is None else str(self.broadcast),
            "extra": [[code, payload.hex()] for code, payload in self.extra],
        }
        return json.dumps(doc, sort_keys=True, ensure_ascii=True, allow_nan=False).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> Lease:
        """Parse a lease file strictly; raises `MalformedLease` on anything unexpected."""
        _check(isinstance(data, bytes), "lease file must be bytes")
        _check(len(data) <= MAX_FILE_SIZE, "lease file too large")
        try:
            doc = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedLease(f"lease file is not JSON: {exc}") from None
        _check(isinstance(doc, dict), "lease file must hold a JSON object")
        expected = {f.name for f in fields(cls)} | {"version"}
        keys = set(doc)
        _check(keys <= expected, f"unknown keys: {sorted(keys - expected)}")
        _check(keys >= expected, f"missing keys: {sorted(expected - keys)}")
        _check(
            _is_int(doc["version"]) and doc["version"] == LEASE_FILE_VERSION,
            "unsupported lease file version",
        )
        return cls(
            address=_parse_ip(doc["address"], "address"),
            prefix_len=_parse_int(doc["prefix_len"], "prefix_len"),
            server_id=_parse_ip(doc["server_id"], "server_id"),
            server_mac=_parse_mac(doc["server_mac"]),
            lease_time=_parse_int(doc["lease_time"], "lease_time"),
            t1=_parse_optional_number(doc["t1"], "t1"),
            t2=_parse_optional_number(doc["t2"], "t2"),
            acquired_at=_parse_number(doc["acquired_at"], "acquired_at"),
            routers=_parse_ips(doc["routers"], "routers"),
            classless_routes=_parse_routes(doc["classless_routes"]),
            dns=_parse_ips(doc["dns"], "dns"),
            domain=_parse_optional_str(doc["domain"], "domain"),
            search=tuple(_parse_str(s, "search") for s in _parse_list(doc["search"], "search")),
            hostname=_parse_optional_str(doc["hostname"], "hostname"),
            mtu=None if doc["mtu"] is None else _parse_int(doc["mtu"], "mtu"),
            ntp=_parse_ips(doc["ntp"], "ntp"),
            broadcast=None
            if doc["broadcast"] is None
            else _parse_ip(doc["broadcast"], "broadcast"),
            extra=_parse_extra(doc["extra"]),
        )


# -- strict parsing helpers ----------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise MalformedLease(f"{name} is not allowed in a lease file")


def _parse_int(value: object, name: str) -> int:
    _check(_is_int(value), f"{name} must be an integer")
    assert isinstance(value, int)
    return value


def _parse_number(value: object, name: str) -> float:
    _check(_is_number(value), f"{name} must be a number")
    assert isinstance(value, int | float)
    return float(value)


def _parse_optional_number(value: object, name: str) -> float | None:
    return None if value is None else _parse_number(value, name)


def _parse_str(value: object, name: str) -> str:
    _check(isinstance(value, str), f"{name} must be a string")
    assert isinstance(value, str)
    return value


def _parse_optional_str(value: object, name: str) -> str | None:
    return None if value is None else _parse_str(value, name)


def _parse_list(value: object, name: str) -> list[object]:
    _check(isinstance(value, list) and len(value) <= MAX_ITEMS, f"{name} must be a short list")
    assert isinstance(value, list)
    return value


def _parse_ip(value: object, name: str) -> IPv4Address:
    text = _parse_str(value, name)
    try:
        address = IPv4Address(text)
    except AddressValueError:
        raise MalformedLease(f"{name}: {text!r} is not an IPv4 address") from None
    _check(str(address) == text, f"{name}: {text!r} is not in canonical form")
    return address


def _parse_ips(value: object, name: str) -> tuple[IPv4Address, ...]:
    return tuple(_parse_ip(item, name) for item in _parse_list(value, name))


def _parse_mac(value: object) -> bytes:
    text = _parse_str(value, "server_mac")
    parts = text.split(":")
    _check(
        len(parts) == 6
        and all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts),
        "server_mac must be aa:bb:cc:dd:ee:ff (lowercase hex)",
    )
    return bytes(int(p, 16) for p in parts)


def _parse_routes(value: object) -> tuple[ClasslessRoute, ...]:
    routes = []
    for item in _parse_list(value, "classless_routes"):
        _check(
            isinstance(item, dict) and set(item) == {"destination", "router"},
            "a classless route is {destination, router}",
        )
        assert isinstance(item, dict)
        text = _parse_str(item["destination"], "destination")
        try:
            network = IPv4Network(text)  # strict: host bits set is an error
        except ValueError:
            raise MalformedLease(f"destination {text!r} is not an IPv4 network") from None
        _check(str(network) == text, f"destination {text!r} is not in canonical form")
        routes.append(ClasslessRoute(network, _parse_ip(item["router"], "router")))
    return tuple(routes)


def _parse_extra(value: object) -> tuple[tuple[int, bytes], ...]:
    out = []
    for item in _parse_list(value, "extra"):
        _check(isinstance(item, list) and len(item) == 2, "an extra option is [code, hex]")
        assert isinstance(item, list)
        code = _parse_int(item[0], "extra code")
        text = _parse_str(item[1], "extra payload")
        _check(
            len(text) % 2 == 0 and all(c in "0123456789abcdef" for c in text),
            "extra payload must be lowercase hex",
        )
        out.append((code, bytes.fromhex(text)))
    return tuple(out)
