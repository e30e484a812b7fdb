"""The `Context` a component receives: its name, fds, parameters, logger and channels.

A plain slotted class (no dataclasses, no typing at run time): it is imported
on every sandboxed start, where each import costs start-up time.
"""

# ruff: noqa: PLC0415 - logging and RPC load on first use: start-up time

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Mapping
    from typing import Any


class Context:
    """What a sandboxed component may use, handed to `prepare(ctx)` and `main(ctx)`.

    `fds` maps each granted resource or channel name to its fd (3, 4, ... in
    LISTEN_FDNAMES order); `params` holds the layout's parameter values.
    """

    __slots__ = ("_channels", "_clients", "_log", "fds", "name", "params")

    def __init__(
        self,
        name: str,
        fds: Mapping[str, int],
        params: Mapping[str, str],
        channels: Mapping[str, tuple[str, str, str]] | None = None,
    ) -> None:
        self.name = name
        self.fds = dict(fds)
        self.params = dict(params)
        self._channels = dict(channels or {})
        self._clients: dict[str, Any] = {}
        self._log: logging.Logger | None = None

    def __repr__(self) -> str:
        return f"Context(name={self.name!r}, fds={self.fds!r})"

    def fd(self, name: str) -> int:
        """The fd granted under `name`; KeyError names what is granted."""
        try:
            return self.fds[name]
        except KeyError:
            granted = ", ".join(sorted(self.fds)) or "none"
            raise KeyError(f"no fd {name!r} granted to {self.name} (granted: {granted})") from None

    @property
    def log(self) -> logging.Logger:
        """A logger writing JSON lines on stderr, tagged with the process name."""
        if self._log is None:
            from privsep import _log

            _log.configure(self.name)
            self._log = _log.get_logger(f"privsep.component.{self.name}")
        return self._log

    def _channel(self, name: str, role: str) -> tuple[int, str, str]:
        try:
            schema, interface, granted_role = self._channels[name]
        except KeyError:
            raise KeyError(f"no channel {name!r} granted to {self.name}") from None
        if granted_role != role:
            raise PermissionError(f"channel {name!r}: {self.name} {granted_role} it, not {role}")
        return self.fd(name), schema, interface

    async def channel(self, name: str) -> Any:
        """A pycapnp client of the interface the layout grants on channel `name`."""
        if name not in self._clients:
            from privsep import rpc

            fd, schema, interface = self._channel(name, "uses")
            self._clients[name] = await rpc.connect(fd, schema, interface)
        return self._clients[name]

    async def serve(self, name: str, impl: object) -> None:
        """Serve `impl` as the interface the layout names on channel `name`."""
        from privsep import rpc

        fd, schema, interface = self._channel(name, "serves")
        await rpc.serve(fd, schema, interface, impl)
