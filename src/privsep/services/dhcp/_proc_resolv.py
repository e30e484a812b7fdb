"""`dhcp-resolv`: the only process of the client that may write resolv.conf.

The resolv.conf directory must be writable for the atomic replace (temp file,
fsync, rename), so whoever holds it could replace any file there (/etc). That
grant lives here, away from the actuator's CAP_NET_ADMIN: uid 0 (to write in
/etc), no capability, an empty network namespace, Landlock write access to
the resolv.conf directory only. It serves `Resolv` to the actuator only, and
treats the actuator's values as hostile: list sizes are checked before any
element is read, and `_resolvconf` checks every value again before rendering
(host names only, IPv4Address only), so nothing but our own block, for our
own interface, can reach the file. `undo` restores only what this process
itself read before its last write.
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Address
from typing import Any, Final

from privsep._log import get_logger, log_event
from privsep.services.dhcp import _resolvconf
from privsep.services.dhcp._hostname import MAX_NAMESERVERS, MAX_SEARCH
from privsep.services.dhcp._resolvconf import ResolvConfRefused

MAX_DOMAIN: Final = 253

_logger = get_logger(__name__)


class ResolvService:
    """`Resolv` of resolv.capnp for one target and one interface."""

    def __init__(self, target: str, ifname: str) -> None:
        self._target = target
        self._ifname = ifname
        self._previous: str | None = None

    def _refuse(self, reason: str) -> ResolvConfRefused:
        log_event(_logger, "resolv-refused", logging.WARNING, reason=reason)
        return ResolvConfRefused(reason)

    async def write(self, servers: Any, domain: Any, search: Any, **kwargs: Any) -> None:
        if len(servers) > MAX_NAMESERVERS or len(search) > MAX_SEARCH:
            raise self._refuse(f"{len(servers)} servers, {len(search)} search names: too many")
        if len(domain) > MAX_DOMAIN:
            raise self._refuse(f"domain over {MAX_DOMAIN} characters")
        try:
            dns = [IPv4Address(int(server)) for server in servers]
            names = [str(name) for name in search]
            previous = _resolvconf.write_resolv_conf(
                self._target,
                ifname=self._ifname,
                dns=dns,
                domain=str(domain) or None,
                search=names,
            )
        except UnicodeDecodeError:
            raise self._refuse("a name is not UTF-8") from None
        except ResolvConfRefused as exc:
            raise self._refuse(str(exc)) from None
        self._previous = previous
        log_event(_logger, "resolv-written", servers=len(dns), search=len(names))

    async def undo(self, **kwargs: Any) -> None:
        previous, self._previous = self._previous, None
        if previous is None:
            raise self._refuse("nothing to undo")
        _resolvconf.restore(self._target, previous)
        log_event(_logger, "resolv-restored")


async def main(ctx: Any) -> None:
    ctx.log  # noqa: B018 - configures JSON logging with our process name
    params = ctx.params
    await ctx.serve("resolv", ResolvService(params["resolv_conf"], params["interface"]))
