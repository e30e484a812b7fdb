"""`dhcp-engine`: drives the sans-IO `Client` with nothing but its two channels.

All parsing of untrusted bytes happens here: frames from `dhcp-network` (via
`Link.recv`, a long poll) and the saved lease (`loadState` from the actuator,
opaque there). The process holds no fd besides the channels, no capability,
no file; seccomp forbids `socket()`.

- Clock: CLOCK_BOOTTIME, so a lease saved before an engine restart keeps its
  meaning (it also counts time suspended, as a lease does).
- Randomness: `random.SystemRandom()`, injected into the engine.
- Events become actuator calls: LeaseAcquired/LeaseRenewed -> applyLease with
  the hook's `bound`/`renew` variables; LeaseExpired/LeaseReleased, a NAK or a
  conflict with a lease in use -> deconfigure (the actuator runs `deconfig`);
  LeaseFailed -> notify `leasefail`; NAK -> notify `nak`.
- applyLease carries only what the actuator accepts (`usable`): a DNS server,
  router or route it would refuse is left out with a WARNING (`dns-dropped`...)
  instead of costing the lease. A refusal or failure is logged `apply-failed`
  with the actuator's reason (`_reason`), not pycapnp's traceback header.
- PacketDropped is logged at DEBUG; a reply to our own exchange that was dropped
  (`Client.dropped_replies`) at INFO, as `reply-dropped`.
- SIGUSR1 renews at once (or restarts after SIGUSR2), SIGUSR2 releases the
  lease and waits, as with udhcpc (`privsep dhcp` forwards both to us).
- SIGTERM cancels the driver; with `release=1` (`-R`) it sends DHCPRELEASE and
  deconfigures first. Without it the address stays (its kernel lifetime is the
  lease's), like udhcpc.
- `quit=1` (`-q`): exit with EXIT_BOUND once the address is configured, or with
  EXIT_NOT_APPLIED if the actuator refused or failed to configure it (otherwise the
  next try would only come at T1); `exit_no_lease=1` (`-n`): exit with EXIT_NO_LEASE
  on leasefail. `privsep dhcp` maps these to its own exit status (0, 1 and 1)
  through the supervisor. Without `-q`, a lease that could not be applied is tried
  again at each renewal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Final

from privsep._log import get_logger, log_event
from privsep.services.dhcp._clientparams import config_from_params, flag
from privsep.services.dhcp._engine import Client
from privsep.services.dhcp._events import (
    AddressConflict,
    Event,
    LeaseAcquired,
    LeaseExpired,
    LeaseFailed,
    LeaseLost,
    LeaseReleased,
    LeaseRenewed,
    PacketDropped,
    StateChanged,
)
from privsep.services.dhcp._hookenv import HookEvent, LeaseFacts, facts_from_lease, hook_env
from privsep.services.dhcp._hostname import (
    MAX_NAMESERVERS,
    MAX_SEARCH,
    MAX_SEARCH_CHARS,
    is_hostname,
)
from privsep.services.dhcp._lease import (
    MAX_NAME,
    MAX_ROUTERS,
    MAX_ROUTES,
    Lease,
    MalformedLease,
    destination_problem,
    dns_problem,
    router_problem,
)
from privsep.services.dhcp._options import ClasslessRoute

EXIT_BOUND: Final = 70  # -q: bound and configured
EXIT_NO_LEASE: Final = 71  # -n: leasefail
EXIT_NOT_APPLIED: Final = 72  # -q: bound, but the actuator could not configure the lease

_logger = get_logger(__name__)


def now() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def _vars(env: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in env.items()]


@dataclass(slots=True)
class Usable:
    """The part of a lease the actuator accepts (docs/dhcp-actuator.md, rules in _lease).

    The actuator refuses a whole request for one bad item, so the engine leaves such
    items out: one unusable DNS server, router or route costs only itself, never the
    lease (udhcpc: domain=bad). `dropped` maps a kind (dns, routers, routes, broadcast,
    names) to {item: why}, for the log; repeated items are left out silently, as the
    actuator drops repeated DNS servers. The hook still sees the lease as sent.
    """

    routers: list[IPv4Address] = field(default_factory=list)
    routes: list[ClasslessRoute] = field(default_factory=list)
    dns: list[IPv4Address] = field(default_factory=list)
    broadcast: IPv4Address | None = None
    domain: str = ""
    search: list[str] = field(default_factory=list)
    dropped: dict[str, dict[str, str]] = field(default_factory=dict)

    def drop(self, kind: str, item: object, why: str) -> None:
        self.dropped.setdefault(kind, {})[str(item)[:64]] = why


def _resolv_name(name: str) -> bool:
    return len(name) <= MAX_NAME and is_hostname(name)


def usable(lease: Lease, *, allow_broad_routes: bool = False) -> Usable:
    """What of `lease` to ask the actuator for (see `Usable`); `allow_broad_routes` as the
    actuator's `Limits` (off in the client)."""
    out = Usable()
    interface = lease.interface
    for router in lease.routers:
        problem = router_problem(router, interface)
        if problem:
            out.drop("routers", router, problem)
        elif router in out.routers:
            continue
        elif len(out.routers) >= MAX_ROUTERS:
            out.drop("routers", router, f"more than {MAX_ROUTERS} routers")
        else:
            out.routers.append(router)
    destinations: dict[IPv4Network, IPv4Address] = {}
    for route in lease.classless_routes:
        name = f"{route.destination} via {route.router}"
        problem = destination_problem(route.destination, allow_broad=allow_broad_routes)
        if not problem and route.router != IPv4Address(0):
            problem = router_problem(route.router, interface)
            problem = f"router {route.router} {problem}" if problem else None
        if problem:
            out.drop("routes", name, problem)
        elif route.destination in destinations:  # the first one wins
            if destinations[route.destination] != route.router:
                out.drop("routes", name, "another route has this destination")
        elif len(out.routes) >= MAX_ROUTES:
            out.drop("routes", name, f"more than {MAX_ROUTES} routes")
        else:
            destinations[route.destination] = route.router
            out.routes.append(route)
    for server in lease.dns:
        problem = dns_problem(server)
        if problem:
            out.drop("dns", server, f"is {problem}")
        elif server in out.dns:
            continue
        elif len(out.dns) >= MAX_NAMESERVERS:
            out.drop("dns", server, f"more than {MAX_NAMESERVERS} DNS servers")
        else:
            out.dns.append(server)
    # The actuator derives the broadcast address and refuses any other one.
    network = interface.network
    derived = network.broadcast_address if network.prefixlen <= 30 else None
    if lease.broadcast is not None and lease.broadcast == derived:
        out.broadcast = derived
    elif lease.broadcast not in (None, IPv4Address(0)):
        out.drop("broadcast", lease.broadcast, f"does not go with {interface}")
    # resolv.conf names: host-name characters only, within resolv.conf's bounds.
    if lease.domain is not None and _resolv_name(lease.domain):
        out.domain = lease.domain
    elif lease.domain is not None:
        out.drop("names", lease.domain, "not a host name")
    for name in lease.search:
        if not _resolv_name(name):
            out.drop("names", name, "not a host name")
        elif len(out.search) >= MAX_SEARCH:
            out.drop("names", name, f"more than {MAX_SEARCH} search names")
        elif len(" ".join([*out.search, name])) > MAX_SEARCH_CHARS:
            out.drop("names", name, f"search list over {MAX_SEARCH_CHARS} characters")
        else:
            out.search.append(name)
    return out


def configuration(
    lease: Lease, event: HookEvent, interface: str, kept: Usable | None = None
) -> dict[str, Any]:
    """actuator.capnp `Configuration` for `lease` (its `usable` part), with the hook's
    variables."""
    if kept is None:
        kept = usable(lease)
    return {
        "address": int(lease.address),
        "prefixLen": lease.prefix_len,
        "broadcast": int(kept.broadcast) if kept.broadcast else 0,
        "routers": [int(r) for r in kept.routers],
        "routes": [
            {
                "destination": int(r.destination.network_address),
                "prefixLen": r.destination.prefixlen,
                "router": int(r.router),
            }
            for r in kept.routes
        ],
        "mtu": lease.mtu or 0,
        "dns": [int(d) for d in kept.dns],
        "domain": kept.domain,
        "search": kept.search,
        "leaseTime": lease.lease_time,
        "stateBlob": lease.to_bytes(),
        "interfaceIndex": 0,
        "hookEvent": event.value,
        "hookEnv": _vars(_hook_env(event, interface, lease=lease)),
    }


def _hook_env(
    event: HookEvent,
    interface: str,
    *,
    lease: Lease | None = None,
    facts: LeaseFacts | None = None,
) -> dict[str, str]:
    """udhcpc's variables for `event`; never raises (a value that cannot be a
    variable costs the hook its variables, never the lease)."""
    try:
        if lease is not None:
            facts = facts_from_lease(lease)
        return hook_env(event, interface, facts)
    except ValueError as exc:  # HookEnvError
        log_event(_logger, "hook-env-failed", logging.WARNING, hook=event.value, error=str(exc))
        return {"interface": interface}


class Driver:
    """One engine, its two peers, and the loop between them."""

    def __init__(
        self, client: Client, link: Any, actuator: Any, params: dict[str, str], fresh: bool
    ) -> None:
        self.client = client
        self.link = link
        self.actuator = actuator
        self.interface = params["interface"]
        self.quit = flag(params.get("quit", "0"))
        self.exit_no_lease = flag(params.get("exit_no_lease", "0"))
        self.release = flag(params.get("release", "0"))
        self.fresh = fresh
        # Frames from the link, commands from signals ("renew", "release"), None: link lost.
        self.frames: asyncio.Queue[tuple[bytes, bool] | str | None] = asyncio.Queue()
        self.exit_code: int | None = None

    async def run(self) -> int:
        if self.fresh:  # udhcpc runs `deconfig` at start
            await self._notify(HookEvent.DECONFIG, {"interface": self.interface})
        reader = asyncio.create_task(self._read())
        try:
            await self._step(self._start)
            while self.exit_code is None:
                timer = self.client.get_timer()
                timeout = None if timer is None else max(0.0, timer - now())
                try:
                    item = await asyncio.wait_for(self.frames.get(), timeout)
                except TimeoutError:
                    await self._step(self._timer)
                    continue
                while item is not None:
                    if isinstance(item, str):
                        await self._command(item)
                    else:
                        await self._step(self._receive, *item)
                    if self.exit_code is not None or self.frames.empty():
                        break
                    item = self.frames.get_nowait()
                if item is None:
                    raise ConnectionError("the link to dhcp-network is gone")
            if self.release and self.client.lease is not None:  # -q -R: release, then exit
                await self._step(self._release)
        except asyncio.CancelledError:
            if self.release and self.client.lease is not None:
                log_event(_logger, "releasing", address=str(self.client.lease.address))
                await self._step(self._release)
            raise
        finally:
            reader.cancel()
        return self.exit_code

    async def _read(self) -> None:
        try:
            while True:
                reply = await self.link.recv()
                for frame in reply.frames:
                    self.frames.put_nowait((bytes(frame.data), bool(frame.checksumNotReady)))
        except Exception as exc:
            log_event(_logger, "link-lost", logging.WARNING, error=_reason(exc))
            # The supervisor restarts the whole group when dhcp-network dies: give its
            # SIGTERM time to arrive, so only the real culprit spends a restart.
            await asyncio.sleep(2)
            self.frames.put_nowait(None)

    def command(self, name: str) -> None:
        """Queue a command from a signal: udhcpc's SIGUSR1 "renew", SIGUSR2 "release"."""
        self.frames.put_nowait(name)

    async def _command(self, name: str) -> None:
        log_event(_logger, "command", command=name)
        if name == "release":
            await self._step(self._release)
        elif name == "renew":
            await self._step(self._renew_now)

    def _renew_now(self) -> None:
        """SIGUSR1: renew at once when bound, resend now while asking, start over otherwise."""
        if not self.client.renew_now(now()):
            log_event(_logger, "renew-skipped", state=self.client.state.name)

    def _start(self) -> None:
        self.client.start(now())

    def _timer(self) -> None:
        self.client.handle_timer(now())

    def _receive(self, frame: bytes, not_ready: bool) -> None:
        self.client.receive_frame(frame, now(), checksum_not_ready=not_ready)

    def _release(self) -> None:
        self.client.release(now())

    async def _step(self, call: Callable[..., None], *args: Any) -> None:
        """Run one engine call, then send its frames and act on its events."""
        lease_before = self.client.lease
        pending_before = self.client.pending_lease  # the address being probed (RFC 5227)
        call(*args)
        leased = self.client.lease or lease_before
        pending = self.client.pending_lease or pending_before
        candidate = pending.address if pending is not None else None
        server = leased.server_id if leased is not None else None
        for frame in self.client.frames_to_send():
            reply = await self.link.send(
                frame,
                int(candidate or 0),
                int(leased.address) if leased is not None else 0,
                int(server or 0),
            )
            if not reply.sent:
                log_event(_logger, "frame-refused", logging.WARNING, length=len(frame))
        while (event := self.client.next_event()) is not None:
            await self._act(event)
        for state, reason in self.client.dropped_replies():  # PacketDropped is only DEBUG
            log_event(_logger, "reply-dropped", state=state.name, reason=reason)

    async def _act(self, event: Event) -> None:
        if isinstance(event, PacketDropped):
            log_event(_logger, "packet-dropped", logging.DEBUG, reason=event.reason)
            return
        if isinstance(event, StateChanged):
            log_event(_logger, "state", old=event.old.name, new=event.new.name)
            return
        if isinstance(event, LeaseAcquired | LeaseRenewed):
            kind = HookEvent.BOUND if isinstance(event, LeaseAcquired) else HookEvent.RENEW
            lease = event.lease
            log_event(
                _logger,
                "lease",
                hook=kind.value,
                address=f"{lease.address}/{lease.prefix_len}",
                server=str(lease.server_id),
                lease_time=lease.lease_time,
            )
            kept = usable(lease)
            for what, items in kept.dropped.items():  # the hook still sees them
                log_event(_logger, f"{what}-dropped", logging.WARNING, dropped=items)
            try:
                await self.actuator.applyLease(configuration(lease, kind, self.interface, kept))
            except Exception as exc:  # the actuator refused: keep running, say why
                if _disconnected(exc):
                    raise
                log_event(_logger, "apply-failed", logging.ERROR, error=_reason(exc))
                if self.quit and kind is HookEvent.BOUND:  # -q would wait for nothing
                    self.exit_code = EXIT_NOT_APPLIED
                return
            if self.quit and kind is HookEvent.BOUND:
                self.exit_code = EXIT_BOUND
            return
        if isinstance(event, LeaseLost):
            facts = LeaseFacts(address=IPv4Address(0), extra=_nak_extra(event.nak_options))
            await self._notify(HookEvent.NAK, _hook_env(HookEvent.NAK, self.interface, facts=facts))
            if event.lease is not None:
                await self._deconfigure(f"nak: {event.reason}")
            return
        if isinstance(event, LeaseExpired | LeaseReleased):
            what = "expired" if isinstance(event, LeaseExpired) else "released"
            await self._deconfigure(f"lease {what}")
            return
        if isinstance(event, AddressConflict):
            log_event(
                _logger,
                "address-conflict",
                logging.WARNING,
                address=str(event.address),
                mac=event.mac.hex(":") if event.mac else None,
            )
            if event.lease_in_use:
                await self._deconfigure("address conflict")
            return
        if isinstance(event, LeaseFailed):
            log_event(_logger, "leasefail", logging.WARNING)
            await self._notify(HookEvent.LEASEFAIL, {"interface": self.interface})
            if self.exit_no_lease:
                self.exit_code = EXIT_NO_LEASE
            return
        log_event(_logger, "engine-event", kind=type(event).__name__, **_fields(event))

    async def _notify(self, event: HookEvent, env: dict[str, str]) -> None:
        try:
            await self.actuator.notify(event.value, _vars(env))
        except Exception as exc:
            if _disconnected(exc):
                raise
            log_event(_logger, "notify-failed", logging.WARNING, error=_reason(exc))

    async def _deconfigure(self, reason: str) -> None:
        try:
            await self.actuator.deconfigure(reason)
        except Exception as exc:
            if _disconnected(exc):
                raise
            log_event(_logger, "deconfigure-failed", logging.ERROR, error=_reason(exc))


def _nak_extra(options: tuple[tuple[int, bytes], ...]) -> tuple[tuple[int, bytes], ...]:
    seen: set[int] = set()
    out = []
    for code, payload in options:
        if 1 <= code <= 254 and code not in seen:
            seen.add(code)
            out.append((code, payload))
    return tuple(out)


def _fields(event: Event) -> dict[str, Any]:
    return {name: str(getattr(event, name)) for name in getattr(event, "__slots__", ())}


def _disconnected(exc: BaseException) -> bool:
    return getattr(exc, "type", None) == "DISCONNECTED"


_TRACEBACK: Final = "Traceback (most recent call last):"
_MODULE_PATH: Final = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*(?::|$))")


def _reason(exc: BaseException) -> str:
    """One line saying why an RPC (or anything else) failed.

    A peer's exception reaches us as pycapnp's `remote exception: message = ` followed
    by the peer's whole traceback: the reason is the exception line after the frames
    of the last traceback (`ActuatorRejected: DNS server ... is link-local`), its
    module path left out. Other texts: their first line.
    """
    text = str(getattr(exc, "description", "") or exc)
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("stack:")]
    if not lines:
        return type(exc).__name__
    headers = [i for i, line in enumerate(lines) if line.endswith(_TRACEBACK)]
    line = lines[0]
    if headers:  # frames are indented; the exception's own line is not
        after = [line for line in lines[headers[-1] + 1 :] if not line[:1].isspace()]
        line = _MODULE_PATH.sub("", after[0], count=1) if after else lines[-1]
    return line[:300]


def _load_lease(blob: bytes, mac: bytes) -> Lease | None:
    if not blob:
        return None
    try:
        lease = Lease.from_bytes(blob)
    except MalformedLease as exc:
        log_event(_logger, "saved-lease-unreadable", logging.WARNING, error=str(exc))
        return None
    log_event(_logger, "saved-lease", address=str(lease.address))
    return lease


async def main(ctx: Any) -> None:
    ctx.log  # noqa: B018 - configures JSON logging with our process name
    link = await ctx.channel("link")
    actuator = await ctx.channel("actuator")
    info = await link.info()
    mac = bytes(info.mac)
    config = config_from_params(ctx.params, mac)
    saved = _load_lease(bytes((await actuator.loadState()).blob), mac)
    client = Client(config, rng=random.SystemRandom(), saved_lease=saved)
    driver = Driver(client, link, actuator, ctx.params, fresh=saved is None)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, driver.command, "renew")
    loop.add_signal_handler(signal.SIGUSR2, driver.command, "release")
    code = await driver.run()
    log_event(_logger, "engine-exit", code=code)
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    # The runner would exit 0 on return; the supervisor needs to tell -q from -n.
    os._exit(code)
