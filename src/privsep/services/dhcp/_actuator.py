"""The DHCP actuator: check every request from the engine, then apply it whole or not at all.

Theory of operation. The engine parses untrusted packets, so the actuator treats
whatever the engine asks for as hostile. A request (`Configuration`, plain typed
values, nothing checked) goes through `validate`, which either raises
`ActuatorRejected(reason)` or returns a `Plan`: exactly the address, routes, MTU
and resolver lines to install, on the one interface this actuator was started
for. Only a Plan reaches the kernel.

`Actuator.apply_lease` then runs one transaction: record what we are about to
own (so a crash mid-way leaves a record that covers everything), change the MTU,
add or refresh the address, add the new routes, remove what the old lease had
and the new one does not (make-before-break), write resolv.conf, persist the
engine's lease blob and our record. Every step pushes its undo; if any step fails
the undos run in reverse and the previous configuration is back.

Ownership: the `applied` record in the state dir lists what this actuator put on
the interface. `deconfigure` removes only that; addresses and routes that someone
else added are never touched. After a restart the record is read back and nothing
on the interface changes until the engine asks: an address keeps its kernel
lifetime (valid_lft = lease time), so if everything died the kernel itself drops
the address when the lease runs out.

Policy decisions (docs/dhcp-actuator.md has the table):
- address: not in 0/8, 127/8, 169.254/16, 224/4, 240/4 or 255.255.255.255;
  prefix 1..32; for prefixes up to /30 not the subnet's network or broadcast
  address. /31 (RFC 3021) and /32 are valid: a router outside the subnet (always
  so for /32) gets an on-link host route first, as dhcpcd and systemd do.
- broadcast: omitted (0.0.0.0) means derived; given, it must equal the derived one.
- routers (option 3): same address rules, not our address, not the subnet's
  network/broadcast address; one default route each, metric base+i. Ignored
  entirely when classless routes are present (RFC 3442).
- classless routes: prefix 0..32, no destination bits beyond the prefix, no
  duplicate destinations, destination not loopback/multicast/reserved, router
  0.0.0.0 (on-link) or a usable address other than ours; routes wider than /8
  other than the default route (TunnelVision, CVE-2024-3661) only with
  `Limits.allow_broad_routes`.
- counts: routers, routes, DNS servers, search names bounded by `Limits`;
  domain/search names hostname characters only, rejected otherwise, never escaped.
- MTU 68..the link's max MTU; lease time >= 1 (0xffffffff: infinite).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, Final, Protocol, final

from privsep._errors import PrivsepError
from privsep._log import get_logger, log_event
from privsep.services.dhcp import _resolvconf
from privsep.services.dhcp._hostname import MAX_NAMESERVERS, is_hostname
from privsep.services.dhcp._lease import (
    MAX_NAME,
    MAX_ROUTERS,
    MAX_ROUTES,
    destination_problem,
    dns_problem,
    host_problem,
    router_problem,
)
from privsep.services.dhcp._netconfig import NetConfig, NetlinkFailed, Route
from privsep.services.dhcp._statedir import StateDir

INFINITE: Final = 0xFFFFFFFF
MIN_MTU: Final = 68  # RFC 791
LEASE_RECORD: Final = "lease"
APPLIED_RECORD: Final = "applied"
_APPLIED_VERSION: Final = 1

_logger = get_logger(__name__)

_DEFAULT: Final = IPv4Network("0.0.0.0/0")


class ActuatorRejected(PrivsepError):
    """A request outside policy; nothing of it was applied. `reason` is one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@final
@dataclass(frozen=True, slots=True)
class RouteRequest:
    """One classless static route as asked for (unchecked). Router 0.0.0.0: on-link."""

    destination: IPv4Address
    prefix_len: int
    router: IPv4Address


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Configuration:
    """What the engine asks the actuator to apply, typed but not yet trusted.

    `interface_index` 0 means "the actuator's own interface"; any other value
    must equal it. `broadcast` None means "derive it". `mtu` None: leave the MTU.
    """

    address: IPv4Address
    prefix_len: int
    broadcast: IPv4Address | None = None
    routers: tuple[IPv4Address, ...] = ()
    routes: tuple[RouteRequest, ...] = ()
    mtu: int | None = None
    dns: tuple[IPv4Address, ...] = ()
    domain: str | None = None
    search: tuple[str, ...] = ()
    lease_time: int = 0
    interface_index: int = 0
    state_blob: bytes = b""


def route_metric_for(ifindex: int) -> int:
    """The metric of our routes on interface `ifindex`: 1024 + 8 per index (routers i of
    a lease take +i, at most 8). One per interface, as dhcpcd does (200 + index): two
    interfaces on DHCP in one namespace would otherwise both want the default route
    with metric 1024, and the second one's whole lease would fail on EEXIST."""
    return 1024 + 8 * ifindex


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Bounds and switches of the policy; `max_mtu` is the link's (read at start)."""

    max_routers: int = MAX_ROUTERS
    max_routes: int = MAX_ROUTES
    max_dns: int = MAX_NAMESERVERS
    max_search: int = 6
    max_search_chars: int = 256
    max_name: int = MAX_NAME
    max_state_blob: int = 32 * 1024
    max_mtu: int = 65535
    allow_broad_routes: bool = False
    route_metric: int = 1024  # the client uses `route_metric_for(ifindex)`


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A validated configuration for interface `ifindex`: routes in install order
    (on-link host routes to gateways before the routes that use them)."""

    ifindex: int
    address: IPv4Interface
    broadcast: IPv4Address | None
    routes: tuple[Route, ...]
    mtu: int | None
    lifetime: int | None  # seconds; None: infinite
    dns: tuple[IPv4Address, ...]
    domain: str | None
    search: tuple[str, ...]
    state_blob: bytes


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """What this actuator put on the interface (persisted as the `applied` record).
    `original_mtu` is the MTU before we first changed it (None: never changed)."""

    ifindex: int
    address: IPv4Interface | None = None
    broadcast: IPv4Address | None = None
    routes: tuple[Route, ...] = ()
    original_mtu: int | None = None
    resolv_conf: bool = False

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "version": _APPLIED_VERSION,
                "ifindex": self.ifindex,
                "address": str(self.address) if self.address else None,
                "broadcast": str(self.broadcast) if self.broadcast else None,
                "routes": [
                    [str(r.destination), str(r.gateway) if r.gateway else None, r.metric]
                    for r in self.routes
                ],
                "original_mtu": self.original_mtu,
                "resolv_conf": self.resolv_conf,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Applied:
        """Parse our own record strictly; ValueError (or a subclass) on anything odd."""
        obj = json.loads(data)
        keys = {"version", "ifindex", "address", "broadcast", "routes", "original_mtu"}
        if not isinstance(obj, dict) or set(obj) != {*keys, "resolv_conf"}:
            raise ValueError("applied record: wrong keys")
        if obj["version"] != _APPLIED_VERSION or type(obj["ifindex"]) is not int:
            raise ValueError("applied record: wrong version or ifindex")
        routes = tuple(
            Route(IPv4Network(d), IPv4Address(g) if g is not None else None, int(m))
            for d, g, m in obj["routes"]
        )
        mtu = obj["original_mtu"]
        if mtu is not None and type(mtu) is not int:
            raise ValueError("applied record: bad original_mtu")
        return cls(
            ifindex=obj["ifindex"],
            address=IPv4Interface(obj["address"]) if obj["address"] is not None else None,
            broadcast=IPv4Address(obj["broadcast"]) if obj["broadcast"] is not None else None,
            routes=routes,
            original_mtu=mtu,
            resolv_conf=bool(obj["resolv_conf"]),
        )


# -- validation ---------------------------------------------------------------


# The rules for single items (an address, a router, a route's destination) live in
# _lease, shared with the engine, which leaves out what would be refused here.


def _check_router(what: str, router: IPv4Address, address: IPv4Interface) -> None:
    problem = router_problem(router, address)
    if problem:
        raise ActuatorRejected(f"{what} {router} {problem}")


def _check_names(raw: Configuration, limits: Limits) -> None:
    names = [*raw.search, *((raw.domain,) if raw.domain else ())]
    for name in names:
        if not isinstance(name, str) or len(name) > limits.max_name or not is_hostname(name):
            shown = name[:40] if isinstance(name, str) else name
            raise ActuatorRejected(f"name {shown!r} is not a host name")
    if len(raw.search) > limits.max_search:
        raise ActuatorRejected(f"{len(raw.search)} search names (at most {limits.max_search})")
    if len(" ".join(raw.search)) > limits.max_search_chars:
        raise ActuatorRejected(f"search list over {limits.max_search_chars} characters")


def _classless(raw: Configuration, address: IPv4Interface, limits: Limits) -> list[Route]:
    routes: list[Route] = []
    seen: set[IPv4Network] = set()
    for request in raw.routes:
        if not 0 <= request.prefix_len <= 32:
            raise ActuatorRejected(f"route prefix length {request.prefix_len} out of 0..32")
        try:
            destination = IPv4Network(f"{request.destination}/{request.prefix_len}")
        except ValueError:
            raise ActuatorRejected(
                f"route {request.destination}/{request.prefix_len} has bits beyond its prefix"
            ) from None
        problem = destination_problem(destination, allow_broad=limits.allow_broad_routes)
        if problem:
            raise ActuatorRejected(f"route {destination} {problem}")
        if destination in seen:
            raise ActuatorRejected(f"route destination {destination} given twice")
        seen.add(destination)
        gateway: IPv4Address | None = None
        if request.router != IPv4Address(0):
            _check_router(f"route {destination} router", request.router, address)
            gateway = request.router
        routes.append(Route(destination, gateway, limits.route_metric))
    return routes


def validate(raw: Configuration, *, ifindex: int, limits: Limits) -> Plan:
    """Check `raw` completely; the Plan to apply, or ActuatorRejected with the first reason."""
    if raw.interface_index not in (0, ifindex):
        raise ActuatorRejected(f"interface index {raw.interface_index} is not ours ({ifindex})")
    problem = host_problem(raw.address)
    if problem:
        raise ActuatorRejected(f"address {raw.address} is {problem}")
    if not 1 <= raw.prefix_len <= 32:
        raise ActuatorRejected(f"prefix length {raw.prefix_len} out of 1..32")
    address = IPv4Interface(f"{raw.address}/{raw.prefix_len}")
    network = address.network
    if raw.prefix_len <= 30 and raw.address in (network.network_address, network.broadcast_address):
        raise ActuatorRejected(f"address {raw.address} is the network or broadcast of {network}")
    derived = network.broadcast_address if raw.prefix_len <= 30 else None
    if raw.broadcast not in (None, IPv4Address(0), derived):
        raise ActuatorRejected(f"broadcast {raw.broadcast} does not match {address}")
    if not 1 <= raw.lease_time <= INFINITE:
        raise ActuatorRejected(f"lease time {raw.lease_time} out of 1..{INFINITE}")
    mtu = raw.mtu
    if mtu is not None and mtu < MIN_MTU:
        raise ActuatorRejected(f"MTU {mtu} out of {MIN_MTU}..{limits.max_mtu}")
    if mtu is not None and mtu > limits.max_mtu:
        # More than this link can take (a jumbo MTU offered to a 1500-byte NIC): the
        # engine cannot know the link's limit, and the lease is good without it. The
        # MTU stays as it is.
        log_event(_logger, "mtu-ignored", logging.WARNING, mtu=mtu, max_mtu=limits.max_mtu)
        mtu = None
    if len(raw.routers) > limits.max_routers:
        raise ActuatorRejected(f"{len(raw.routers)} routers (at most {limits.max_routers})")
    if len(raw.routes) > limits.max_routes:
        raise ActuatorRejected(f"{len(raw.routes)} routes (at most {limits.max_routes})")
    if len(raw.dns) > limits.max_dns:
        raise ActuatorRejected(f"{len(raw.dns)} DNS servers (at most {limits.max_dns})")
    if len(raw.state_blob) > limits.max_state_blob:
        raise ActuatorRejected(f"state blob over {limits.max_state_blob} bytes")
    _check_names(raw, limits)
    dns: list[IPv4Address] = []
    for server in raw.dns:
        problem = dns_problem(server)
        if problem:
            raise ActuatorRejected(f"DNS server {server} is {problem}")
        if server not in dns:  # servers repeat an entry now and then: harmless, dropped
            dns.append(server)

    if raw.routes:  # RFC 3442: with classless routes, option 3 is ignored
        routes = _classless(raw, address, limits)
    else:
        routes = []
        for i, router in enumerate(raw.routers):
            _check_router("router", router, address)
            if any(r.gateway == router for r in routes):
                raise ActuatorRejected(f"router {router} given twice")
            routes.append(Route(_DEFAULT, router, limits.route_metric + i))
    # A gateway outside our subnet (always so for a /32) needs an on-link host
    # route first; an explicit classless route to it wins over ours.
    host_routes: list[Route] = []
    taken = {r.destination for r in routes}
    for route in routes:
        if route.gateway is not None and route.gateway not in network:
            host = IPv4Network(route.gateway)
            if host not in taken:
                taken.add(host)
                host_routes.append(Route(host, None, limits.route_metric))
    ordered = [r for r in routes if r.gateway is None] + host_routes
    ordered += [r for r in routes if r.gateway is not None]
    return Plan(
        ifindex=ifindex,
        address=address,
        broadcast=derived,
        routes=tuple(ordered),
        mtu=mtu,
        lifetime=None if raw.lease_time == INFINITE else raw.lease_time,
        dns=tuple(dns),
        domain=raw.domain or None,
        search=tuple(raw.search),
        state_blob=raw.state_blob,
    )


def configuration_from_message(msg: Any, limits: Limits) -> Configuration:
    """Turn a capnp `Configuration` reader into a Configuration, checking list sizes
    before touching any element (a hostile message may carry millions)."""
    for name, bound in (
        ("routers", limits.max_routers),
        ("routes", limits.max_routes),
        ("dns", limits.max_dns),
        ("search", limits.max_search),
    ):
        if len(getattr(msg, name)) > bound:
            raise ActuatorRejected(f"{len(getattr(msg, name))} {name} (at most {bound})")
    if len(msg.stateBlob) > limits.max_state_blob:
        raise ActuatorRejected(f"state blob over {limits.max_state_blob} bytes")
    try:
        return _configuration(msg)
    except UnicodeDecodeError:
        raise ActuatorRejected("a text field is not UTF-8") from None


def _configuration(msg: Any) -> Configuration:
    return Configuration(
        address=IPv4Address(msg.address),
        prefix_len=msg.prefixLen,
        broadcast=IPv4Address(msg.broadcast) if msg.broadcast else None,
        routers=tuple(IPv4Address(r) for r in msg.routers),
        routes=tuple(
            RouteRequest(IPv4Address(r.destination), r.prefixLen, IPv4Address(r.router))
            for r in msg.routes
        ),
        mtu=msg.mtu or None,
        dns=tuple(IPv4Address(d) for d in msg.dns),
        domain=str(msg.domain) or None,
        search=tuple(str(s) for s in msg.search),
        lease_time=msg.leaseTime,
        interface_index=msg.interfaceIndex,
        state_blob=bytes(msg.stateBlob),
    )


# -- applying -----------------------------------------------------------------

_Undo = Callable[[], Awaitable[None]]


class ResolvWriter(Protocol):
    """Where our resolv.conf block goes: `LocalResolvConf` (this process writes the
    file) or, in the real client, `dhcp-resolv` over RPC (`_proc_actuator`), so the
    actuator itself needs no write access to the resolv.conf directory."""

    async def write(
        self, dns: tuple[IPv4Address, ...], domain: str | None, search: tuple[str, ...]
    ) -> _Undo:
        """Put these values in our block (all empty: remove it); returns the undo."""
        ...


@final
class LocalResolvConf:
    """A `ResolvWriter` writing `target` from this process (`_resolvconf`)."""

    __slots__ = ("ifname", "target")

    def __init__(self, target: str | Path, ifname: str) -> None:
        self.target = target
        self.ifname = ifname

    async def write(
        self, dns: tuple[IPv4Address, ...], domain: str | None, search: tuple[str, ...]
    ) -> _Undo:
        before = _resolvconf.write_resolv_conf(
            self.target, ifname=self.ifname, dns=dns, domain=domain, search=search
        )
        return _bind_restore(self.target, before or "")


@dataclass(slots=True)
class _Transaction:
    undo: list[tuple[str, _Undo]] = field(default_factory=list)

    def push(self, what: str, step: _Undo) -> None:
        self.undo.append((what, step))

    async def roll_back(self) -> None:
        for what, step in reversed(self.undo):
            try:
                await step()
            except (NetlinkFailed, OSError, PrivsepError) as exc:
                log_event(_logger, "rollback-step-failed", step=what, error=str(exc))


@final
class Actuator:
    """The actuator of one interface: `apply_lease`, `deconfigure`, `load_state`.

    Not safe for concurrent calls: the RPC server awaits one call at a time
    through `_busy` (a hostile engine cannot interleave two transactions).
    """

    def __init__(
        self,
        net: NetConfig,
        state: StateDir,
        *,
        ifindex: int,
        ifname: str,
        resolv: ResolvWriter | None,
        limits: Limits,
        applied: Applied,
    ) -> None:
        self.net = net
        self.state = state
        self.ifindex = ifindex
        self.ifname = ifname
        self.resolv = resolv  # None: resolv.conf is not ours (`none`)
        self.limits = limits
        self.applied = applied
        self._busy = asyncio.Lock()
        # What each record holds on disk, to skip rewriting (and fsyncing) equal
        # content: a renew then costs one write, the new lease blob.
        self._written: dict[str, bytes | None] = {}

    @classmethod
    async def start(
        cls,
        net: NetConfig,
        state: StateDir,
        *,
        ifindex: int,
        resolv_conf: str | Path = _resolvconf.NONE_TARGET,
        resolv: ResolvWriter | None = None,
        limits: Limits | None = None,
    ) -> Actuator:
        """Read the link (name, max MTU) and our `applied` record; change nothing.
        resolv.conf goes to `resolv` if given, else to `resolv_conf` from here."""
        link = await net.link(ifindex)
        limits = limits or Limits()
        if link.max_mtu and link.max_mtu < limits.max_mtu:
            limits = dataclasses.replace(limits, max_mtu=link.max_mtu)
        applied = Applied(ifindex=ifindex)
        data = state.load(APPLIED_RECORD)
        if data is not None:
            try:
                record = Applied.from_bytes(data)
            except (ValueError, TypeError, KeyError) as exc:
                log_event(_logger, "applied-record-unreadable", error=str(exc))
            else:
                if record.ifindex == ifindex:
                    applied = record
                else:  # the interface was re-created: what we owned is gone with it
                    log_event(_logger, "applied-record-other-interface", ifindex=record.ifindex)
        log_event(_logger, "actuator-started", ifindex=ifindex, ifname=link.name)
        return cls(
            net,
            state,
            ifindex=ifindex,
            ifname=link.name,
            resolv=resolv or _local_resolv(resolv_conf, link.name),
            limits=limits,
            applied=applied,
        )

    def _save(self, name: str, payload: bytes) -> None:
        if self._written.get(name) != payload:
            self.state.save(name, payload)
            self._written[name] = payload

    def load_state(self) -> bytes:
        """The engine's last persisted lease blob (b'' if none)."""
        return self.state.load(LEASE_RECORD) or b""

    def validate(self, raw: Configuration) -> Plan:
        return validate(raw, ifindex=self.ifindex, limits=self.limits)

    async def apply_lease(self, raw: Configuration) -> Plan:
        """Validate all, then apply all; on any failure roll back and re-raise."""
        async with self._busy:
            try:
                plan = self.validate(raw)
            except ActuatorRejected as exc:
                log_event(_logger, "lease-rejected", reason=exc.reason)
                raise
            await self._apply(plan)
            log_event(
                _logger,
                "lease-applied",
                address=str(plan.address),
                routes=len(plan.routes),
                lifetime=plan.lifetime,
            )
            return plan

    async def _apply(self, plan: Plan) -> None:
        net, idx, old = self.net, self.ifindex, self.applied
        new_keys = {r.key for r in plan.routes}
        link = await net.link(idx)
        addresses = {a.interface: a for a in await net.addresses(idx)}
        present = {r.key: r for r in await net.routes(idx)}
        old_keys = {r.key for r in old.routes}
        original_mtu = old.original_mtu
        if plan.mtu is not None and plan.mtu != link.mtu and original_mtu is None:
            original_mtu = link.mtu
        final = Applied(
            ifindex=idx,
            address=plan.address,
            broadcast=plan.broadcast,
            routes=plan.routes,
            original_mtu=original_mtu,
            resolv_conf=self.resolv is not None,
        )
        # Intent first: if we die mid-way, the record covers old and new.
        intent = Applied(
            ifindex=idx,
            address=old.address or plan.address,
            broadcast=old.broadcast,
            routes=old.routes + tuple(r for r in plan.routes if r.key not in old_keys),
            original_mtu=original_mtu,
            resolv_conf=final.resolv_conf,
        )
        self._save(APPLIED_RECORD, intent.to_bytes())
        tx = _Transaction()
        try:
            if plan.mtu is not None and plan.mtu != link.mtu:
                try:
                    await net.set_mtu(idx, plan.mtu)
                    tx.push("mtu", lambda: net.set_mtu(idx, link.mtu))
                except NetlinkFailed as exc:
                    # The link's own limit can be lower than the IFLA_MAX_MTU checked in
                    # `validate` (a macvlan on a 1500-byte parent says 65535): the MTU
                    # stays, the lease applies.
                    if exc.errno != errno.EINVAL:
                        raise
                    log_event(_logger, "mtu-ignored", logging.WARNING, mtu=plan.mtu, error=str(exc))
            await self._apply_address(plan, addresses, tx)
            for route in plan.routes:
                await self._apply_route(route, present, old_keys, tx)
            for route in old.routes:  # break only after make
                if route.key not in new_keys and present.get(route.key) == route:
                    await net.delete_route(idx, route)
                    tx.push(f"re-add {route.destination}", _bind(net.add_route, idx, route))
            if old.address is not None and old.address != plan.address:
                previous = addresses.get(old.address)
                if previous is not None:
                    await net.delete_address(idx, old.address)
                    tx.push(
                        f"re-add {old.address}",
                        _bind_addr(net, idx, old.address, previous.broadcast, previous.valid_lft),
                    )
                    await self._repair_flushed(plan)
            if self.resolv is not None:
                undo = await self.resolv.write(plan.dns, plan.domain, plan.search)
                tx.push("resolv.conf", undo)
            self._save(LEASE_RECORD, plan.state_blob)
            self._save(APPLIED_RECORD, final.to_bytes())
        except BaseException as exc:
            log_event(_logger, "apply-failed-rolling-back", error=str(exc))
            await tx.roll_back()
            self._save(APPLIED_RECORD, old.to_bytes())
            raise
        self.applied = final

    async def _apply_address(
        self,
        plan: Plan,
        addresses: dict[IPv4Interface, Any],
        tx: _Transaction,
    ) -> None:
        net, idx = self.net, self.ifindex
        current = addresses.get(plan.address)
        if current is None:
            await net.add_address(idx, plan.address, plan.broadcast, plan.lifetime)
            tx.push(f"remove {plan.address}", lambda: net.delete_address(idx, plan.address))
            return
        # Renew: refresh the lifetime (and broadcast) in place; undo puts back what
        # was left of the old lifetime.
        await net.add_address(idx, plan.address, plan.broadcast, plan.lifetime, replace=True)
        tx.push(
            f"restore {plan.address}",
            _bind_addr(net, idx, plan.address, current.broadcast, current.valid_lft, replace=True),
        )

    async def _apply_route(
        self,
        route: Route,
        present: dict[tuple[IPv4Network, int], Route],
        old_keys: set[tuple[IPv4Network, int]],
        tx: _Transaction,
    ) -> None:
        net, idx = self.net, self.ifindex
        existing = present.get(route.key)
        if existing == route:
            # Ours and unchanged (a renew), or left exactly so by an earlier client whose
            # state is gone: adopt it (as an address already there is) rather than fail
            # on EEXIST. Adopted, it is removed at deconfigure, if it is `proto dhcp`.
            return
        if existing is not None and route.key in old_keys:
            # Ours with another gateway: switch it atomically.
            await net.add_route(idx, route, replace=True)
            tx.push(f"restore {route.destination}", _bind(net.add_route, idx, existing, True))
            return
        # New (or someone else's with the same key and another gateway: EEXIST, and we
        # roll back).
        await net.add_route(idx, route)
        tx.push(f"remove {route.destination}", _bind(net.delete_route, idx, route))

    async def _repair_flushed(self, plan: Plan) -> None:
        """Deleting a primary address also deletes the secondaries of its subnet unless
        promote_secondaries is on (it is off in a new netns). If the new address went
        with the old one, put it and its routes back (a short break, logged)."""
        net, idx = self.net, self.ifindex
        if any(a.interface == plan.address for a in await net.addresses(idx)):
            return
        log_event(_logger, "secondary-address-flushed", address=str(plan.address))
        await net.add_address(idx, plan.address, plan.broadcast, plan.lifetime)
        present = {r.key: r for r in await net.routes(idx)}
        for route in plan.routes:
            if present.get(route.key) != route:
                await net.add_route(idx, route, replace=route.key in present)
        # No new undo entries: the ones already pushed remove these again.

    async def deconfigure(self, reason: str) -> None:
        """Remove what we applied (only that), restore the MTU, drop our resolv.conf
        block and the lease blob. Missing pieces (expired, removed by hand) are fine."""
        async with self._busy:
            log_event(_logger, "deconfigure", reason=reason[:200])
            net, idx, old = self.net, self.ifindex, self.applied
            errors: list[str] = []
            for route in reversed(old.routes):
                await _ignore_gone(net.delete_route(idx, route), errors)
            if old.address is not None:
                mine = [a for a in await net.addresses(idx) if a.interface == old.address]
                if mine:
                    await _ignore_gone(net.delete_address(idx, old.address), errors)
            if old.original_mtu is not None:
                await _ignore_gone(net.set_mtu(idx, old.original_mtu), errors)
            if old.resolv_conf and self.resolv is not None:
                await self.resolv.write((), None, ())
            self.state.remove(LEASE_RECORD)
            self.applied = Applied(ifindex=idx)
            self._written.pop(LEASE_RECORD, None)
            self._save(APPLIED_RECORD, self.applied.to_bytes())
            if errors:
                raise NetlinkFailed("deconfigure", 0, "; ".join(errors))


def _bind(fn: Callable[..., Awaitable[None]], *args: Any) -> _Undo:
    async def step() -> None:
        await fn(*args)

    return step


def _bind_addr(
    net: NetConfig,
    idx: int,
    interface: IPv4Interface,
    broadcast: IPv4Address | None,
    lifetime: int | None,
    *,
    replace: bool = False,
) -> _Undo:
    async def step() -> None:
        # A lifetime that ran down to 0 still gets a second, never "forever".
        kept = None if lifetime is None else max(lifetime, 1)
        await net.add_address(idx, interface, broadcast, kept, replace=replace)

    return step


def _local_resolv(target: str | Path, ifname: str) -> LocalResolvConf | None:
    return None if str(target) == _resolvconf.NONE_TARGET else LocalResolvConf(target, ifname)


def _bind_restore(target: str | Path, content: str) -> _Undo:
    async def step() -> None:
        _resolvconf.restore(target, content)

    return step


_GONE: Final = frozenset({3, 19, 99})  # ESRCH, ENODEV, EADDRNOTAVAIL: already absent


async def _ignore_gone(op: Awaitable[None], errors: list[str]) -> None:
    try:
        await op
    except NetlinkFailed as exc:
        if exc.errno not in _GONE:
            errors.append(str(exc))


SCHEMA_PATH: Final = Path(__file__).with_name("actuator.capnp")


@final
class ActuatorRpc:
    """The `Actuator` interface of actuator.capnp over an `Actuator`; serve it with
    `privsep.rpc.serve(fd, SCHEMA_PATH, "Actuator", ActuatorRpc(actuator))`.

    A rejection or a netlink failure reaches the engine as an RPC exception whose
    description carries the one-line reason.
    """

    __slots__ = ("_actuator",)

    def __init__(self, actuator: Actuator) -> None:
        self._actuator = actuator

    async def applyLease(self, config: Any, **kwargs: object) -> None:
        try:
            raw = configuration_from_message(config, self._actuator.limits)
        except ActuatorRejected as exc:
            log_event(_logger, "lease-rejected", reason=exc.reason)
            raise
        await self._actuator.apply_lease(raw)

    async def deconfigure(self, reason: str, **kwargs: object) -> None:
        await self._actuator.deconfigure(str(reason))

    async def loadState(self, **kwargs: object) -> bytes:
        return self._actuator.load_state()
