"""`dhcp-actuator`: applies what the engine asks, after checking it, and triggers hooks.

Holds CAP_NET_ADMIN, the netlink route socket the supervisor opened in the
interface's namespace, write access to its state dir only (Landlock), and
three channels: it serves `EngineActuator` to the engine, uses `Hook` of
`dhcp-hook` (absent when no hook script is configured) and `Resolv` of
`dhcp-resolv` (absent with `--resolv-conf none`), which alone may write the
resolv.conf directory. It can never execve (seccomp): hook scripts run in
`dhcp-hook`.

The interface index comes from the kernel (RTM_GETLINK by name on our own
socket), never from the engine. Hook variables from the engine are data: names
must look like shell variables, values carry no NUL, sizes are bounded, and
`interface` is always our own name. A hook's failure never fails a lease.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address
from typing import Any, Final, final

from privsep._errors import PrivsepError
from privsep._log import get_logger, log_event
from privsep.services.dhcp._actuator import (
    Actuator,
    ActuatorRejected,
    ActuatorRpc,
    Limits,
    route_metric_for,
)
from privsep.services.dhcp._netconfig import NetConfig
from privsep.services.dhcp._statedir import StateDir

_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_VARS: Final = 256
MAX_ENV_BYTES: Final = 64 * 1024
_NOTIFY_EVENTS: Final = frozenset({"leasefail", "nak", "deconfig"})
_APPLY_EVENTS: Final = frozenset({"bound", "renew"})

_logger = get_logger(__name__)


def hook_variables(env: Any, ifname: str) -> dict[str, str]:
    """Check the engine's hook variables (hostile input); `interface` is ours."""
    if len(env) > MAX_VARS:
        raise ActuatorRejected(f"{len(env)} hook variables (at most {MAX_VARS})")
    out: dict[str, str] = {}
    size = 0
    for var in env:
        key, value = str(var.key), str(var.value)
        size += len(key) + len(value) + 2
        if not _NAME_RE.match(key) or key == "PATH":
            raise ActuatorRejected(f"bad hook variable name {key[:40]!r}")
        if "\x00" in value:
            raise ActuatorRejected(f"hook variable {key} holds NUL")
        out[key] = value
    if size > MAX_ENV_BYTES:
        raise ActuatorRejected(f"hook variables over {MAX_ENV_BYTES} bytes")
    out["interface"] = ifname
    return out


class ResolvFailed(PrivsepError):
    """dhcp-resolv refused or could not write resolv.conf (the lease rolls back)."""


@final
class RemoteResolvConf:
    """A `ResolvWriter` over the `Resolv` channel of `dhcp-resolv`. Its errors (RPC
    exceptions) become `ResolvFailed`, which the transaction's rollback handles."""

    __slots__ = ("_client",)

    def __init__(self, client: Any) -> None:
        self._client = client

    async def _call(self, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            await call()
        except Exception as exc:  # capnp.KjException: refused, or dhcp-resolv is gone
            # A remote exception's description is its traceback: keep the last line.
            text = str(getattr(exc, "description", "") or exc)
            lines = [line for line in text.splitlines() if line.strip()]
            lines = [line for line in lines if not line.startswith("stack:")] or [repr(exc)]
            raise ResolvFailed(f"dhcp-resolv: {lines[-1][:300]}") from None

    async def write(
        self, dns: tuple[IPv4Address, ...], domain: str | None, search: tuple[str, ...]
    ) -> Callable[[], Awaitable[None]]:
        servers = [int(server) for server in dns]
        await self._call(lambda: self._client.write(servers, domain or "", list(search)))
        return self._undo

    async def _undo(self) -> None:
        await self._call(self._client.undo)


class EngineActuatorService:
    """`EngineActuator` of actuator.capnp: `Actuator` plus hook notifications."""

    def __init__(self, actuator: Actuator, hook: Any | None, ifname: str) -> None:
        self._rpc = ActuatorRpc(actuator)
        self._actuator = actuator
        self._hook = hook
        self._ifname = ifname

    async def _run_hook(self, event: str, env: dict[str, str]) -> None:
        if self._hook is None:
            return
        try:
            await self._hook.run(event, [{"key": k, "value": v} for k, v in env.items()])
        except Exception as exc:  # the hook process failing must not fail a lease
            log_event(
                _logger, "hook-call-failed", logging.WARNING, hook_event=event, error=str(exc)
            )

    async def applyLease(self, config: Any, **kwargs: Any) -> None:
        event = str(config.hookEvent)
        env = hook_variables(config.hookEnv, self._ifname) if event else {}
        if event and event not in _APPLY_EVENTS:
            raise ActuatorRejected(f"hook event {event[:20]!r} does not go with applyLease")
        await self._rpc.applyLease(config)
        if event:
            await self._run_hook(event, env)

    async def deconfigure(self, reason: str, **kwargs: Any) -> None:
        try:
            await self._rpc.deconfigure(reason)
        finally:
            await self._run_hook("deconfig", {"interface": self._ifname})

    async def loadState(self, **kwargs: Any) -> bytes:
        return await self._rpc.loadState()

    async def notify(self, event: str, env: Any, **kwargs: Any) -> None:
        event = str(event)
        if event not in _NOTIFY_EVENTS:
            raise ActuatorRejected(f"hook event {event[:20]!r} cannot be notified")
        variables = hook_variables(env, self._ifname)
        if event == "deconfig":
            variables = {"interface": self._ifname}
        await self._run_hook(event, variables)


async def main(ctx: Any) -> None:
    ctx.log  # noqa: B018 - configures JSON logging with our process name
    params = ctx.params
    net = await NetConfig.open(ctx.fd("route"))
    ifname = params["interface"]
    ifindex = await net.link_index(ifname)
    # Without the channel (`--resolv-conf none`) resolv.conf is not ours at all.
    resolv = RemoteResolvConf(await ctx.channel("resolv")) if "resolv" in ctx.fds else None
    actuator = await Actuator.start(
        net,
        StateDir(params["state_dir"]),
        ifindex=ifindex,
        resolv=resolv,
        limits=Limits(route_metric=route_metric_for(ifindex)),
    )
    hook = await ctx.channel("hook") if "hook" in ctx.fds else None
    await ctx.serve("actuator", EngineActuatorService(actuator, hook, ifname))
