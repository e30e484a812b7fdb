"""What a sandboxed component sees: the `Context` handed to `prepare(ctx)` and `main(ctx)`.

A component is a Python function named by a layout's `entry` (`module:function`,
sync or `async def`), optionally with a `prepare` hook that runs before the
locks go on (import heavy modules, read granted files, parse schemas)::

    async def main(ctx: Context) -> None:
        counter = await ctx.channel("counter")        # a pycapnp client
        ctx.log.info("started")                       # JSON line on stderr
        raw = ctx.fd("raw")                           # a granted fd (int)

The runner (`privsep.component._runner`) is started by the exec helper of
`privsep.sandbox.spawn` (or, with `fork=True`, in the forked child);
components never call it. With a forking supervisor, a module may define
`preload(process_name)` to import up front what its `prepare` would.
"""

from __future__ import annotations

from privsep.component._context import Context

__all__ = ["Context"]
