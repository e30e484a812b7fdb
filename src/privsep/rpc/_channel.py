"""Both ends of a channel: a typed client over an fd, and a server exporting one interface.

A channel is one end of a `socketpair(AF_UNIX, SOCK_STREAM)` the supervisor made.
The serving side exports exactly the interface the layout names as its bootstrap
capability, even when the implementation object offers more: calls for any other
interface fail at the server with `unimplemented`. The using side gets a client
cast to that interface, so other methods do not even exist on it.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import capnp

from privsep.rpc._schema import RpcError, interface


def _socket(fd: int) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise RpcError(f"fd {fd} is not a socket: {exc.strerror}") from exc
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise RpcError(f"fd {fd} is not an AF_UNIX stream socket")
    sock.setblocking(False)
    return sock


async def _stream(fd: int) -> Any:

    return await capnp.AsyncIoStream.create_connection(sock=_socket(fd))


async def connect(fd: int, schema_path: str | Path, interface_name: str) -> Any:
    """A client of `interface_name` (from the schema at `schema_path`) over channel fd `fd`.

    The channel takes ownership of `fd` (it is closed with the connection).
    The returned capability keeps its connection alive; calls are awaited:
    `(await client.increment(1)).value`. If the peer goes away, calls raise
    `capnp.KjException` with `type == "DISCONNECTED"`.
    """

    iface = interface(schema_path, interface_name)
    stream = await _stream(fd)
    return capnp.TwoPartyClient(stream).bootstrap().cast_as(iface)


class _Narrowed:
    """Exposes only the methods of one interface of an implementation object.

    pycapnp exports the interface named by the bootstrap's `schema` attribute
    and looks methods up by name on it; this wrapper pins `schema` and refuses
    every other attribute, so a wider implementation never leaks through.
    """

    def __init__(self, iface: Any, impl: Any) -> None:
        self.schema = iface.schema
        self._impl = impl
        names = set(iface.schema.method_names_inherited)
        self._allowed = names | {f"{name}_context" for name in names}
        missing = sorted(
            n
            for n in names
            if not any(callable(getattr(impl, a, None)) for a in (n, f"{n}_context"))
        )
        if missing:
            raise RpcError(
                f"{type(impl).__name__} does not implement {', '.join(missing)} "
                f"of {iface.schema.node.displayName}"
            )

    def __getattr__(self, name: str) -> Any:
        if name not in self._allowed:
            raise AttributeError(name)
        return getattr(self._impl, name)


async def serve(fd: int, schema_path: str | Path, interface_name: str, impl: Any) -> None:
    """Serve `impl` as `interface_name` on channel fd `fd` until the peer disconnects.

    Takes ownership of `fd`. `impl`'s methods must be
    `async def name(self, <params>, **kwargs)`, returning the result value(s)
    (a tuple for several). Run several channels at once with
    `asyncio.gather(serve(...), serve(...))`.
    """

    bootstrap = _Narrowed(interface(schema_path, interface_name), impl)
    stream = await _stream(fd)
    server = capnp.TwoPartyServer(stream, bootstrap=bootstrap)
    try:
        await server.on_disconnect()
    finally:
        server.close()
