"""The counter server: holds one number and serves the `Counter` interface.

Runs in its sandbox with no capabilities, no network and the default seccomp
profile; its only way to the world is the `counter` channel.
"""

from __future__ import annotations

from typing import Any


class CounterImpl:
    """The `Counter` interface of counter.capnp. RPC methods must be `async def`."""

    def __init__(self) -> None:
        self.value = 0

    async def increment(self, by: int, **kwargs: Any) -> int:
        self.value += by
        return self.value

    async def get(self, **kwargs: Any) -> int:
        return self.value


async def main(ctx: Any) -> None:
    ctx.log.info("serving", extra={"fields": {"channel": "counter"}})
    # Returns when the client disconnects; the process then exits 0.
    await ctx.serve("counter", CounterImpl())
