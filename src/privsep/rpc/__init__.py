"""Cap'n Proto RPC between the processes of a layout (pycapnp 2.x underneath).

A component writes `async def main(ctx)`; the runner calls
`run_async(main, ctx, before=apply_locks)`, which creates the asyncio loop and
pycapnp's KJ loop, then puts the locks on, then awaits `main`. Inside, channels
are used through `ctx.channel(name)` / `ctx.serve(name, impl)`, which call
`connect` / `serve` here with the fd and schema the layout grants::

    counter = await connect(fd, "/srv/counter.capnp", "Counter")
    value = (await counter.increment(by=2)).value

    class CounterImpl:
        async def increment(self, by: int, **kwargs: object) -> int: ...
    await serve(fd, "/srv/counter.capnp", "Counter", CounterImpl())

Pitfalls of pycapnp 2.x, where they bite:

- Server methods must be `async def`; a plain `def` fails every call with
  "Server function (...) is not a coroutine". They receive the parameters as
  keyword arguments plus `_context`, so accept `**kwargs`. Return the result
  (a tuple for several results), or fill `_context.results`.
- Client calls take the parameters positionally or by keyword, except a
  parameter called `name`: `client.greet(name="x")` raises "_send() got
  multiple values for keyword argument 'name'"; pass it positionally.
- Every RPC call needs the KJ loop running: only call `connect`/`serve` (and
  any capability) inside `run_async` (or `capnp.kj_loop()`); outside it pycapnp
  raises "KJ event loop not running". `asyncio.run` alone is not enough.
- Never `fork()` while the loops run (the child inherits a half-shared KJ
  loop and epoll set). Importing pycapnp and loading schemas before a fork is
  fine: `privsep.sandbox.spawn(fork=True)` does exactly that, from a
  supervisor that never runs a KJ loop itself.
- File descriptors cannot travel over pycapnp RPC; every fd a process needs is
  passed at spawn (LISTEN_FDS). Channels are socketpairs made by the supervisor.
- Schemas load from `.capnp` files only (no inline text) and each load costs
  milliseconds: `load_schema` caches per process; pass `schemas=` to
  `run_async` to parse them before the locks.
- A call costs ~0.15 ms round trip between two processes over a socketpair
  (measured; two context switches and the KJ/asyncio bridge; up to ~0.3 ms
  on a busy machine): batch work per call rather than chatting.
- When the peer disappears, pending and later calls raise `capnp.KjException`
  with `.type == "DISCONNECTED"`; `serve` returns. The supervisor then gives
  both ends a fresh channel by restarting them (see `privsep.supervisor`).
- Keep the client object referenced: dropping the last reference closes the
  connection.
"""

from __future__ import annotations

from privsep.rpc._channel import connect, serve
from privsep.rpc._loop import run_async
from privsep.rpc._schema import RpcError, interface, load_schema

__all__ = ["RpcError", "connect", "interface", "load_schema", "run_async", "serve"]
