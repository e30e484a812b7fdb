"""The counter client: calls `increment` a few times over the `counter` channel.

How many calls and the pause between them are the layout's parameters
(`privsep run layout.yaml --set increments=10 --set delay=0.5`).
"""

from __future__ import annotations

import asyncio
from typing import Any


async def main(ctx: Any) -> None:
    increments = int(ctx.params["increments"])
    delay = float(ctx.params["delay"])
    counter = await ctx.channel("counter")  # a client of exactly `Counter`
    value = 0
    for _ in range(increments):
        value = (await counter.increment(by=1)).value
        if delay:
            await asyncio.sleep(delay)
    ctx.log.info("result", extra={"fields": {"value": value, "increments": increments}})
