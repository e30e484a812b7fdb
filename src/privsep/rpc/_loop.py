"""The event loops of a component: asyncio plus pycapnp's KJ loop, made before the locks."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TypeVar

import capnp

from privsep.rpc._schema import load_schema

C = TypeVar("C")
T = TypeVar("T")

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _Stopped:
    """`main` was cancelled by SIGTERM/SIGINT."""


def run_async(
    main: Callable[[C], Awaitable[T]],
    ctx: C,
    before: Callable[[], None] | None = None,
    *,
    schemas: Iterable[str | Path] = (),
) -> T:
    """Run `await main(ctx)` inside a fresh asyncio loop and a running KJ loop.

    Order matters for the sandbox: the asyncio loop (epoll, self-pipe), the KJ
    loop and the SIGTERM/SIGINT handlers exist and `schemas` are parsed *before*
    `before()` runs, so the runner can put the final locks (Landlock,
    no_new_privs, seccomp) on in `before` and the component never needs a
    syscall the locks forbid just to set its loops up.

    Returns what `main` returns; exceptions propagate. SIGTERM or SIGINT
    cancels `main` (it sees `CancelledError` at its current `await` and may
    clean up in `finally`); once the loops have shut down, `SystemExit(0)` is
    raised. A signal must never raise inside the loops instead: an exception
    thrown from a signal handler in the middle of a KJ callback can leave the
    KJ loop waiting forever at shutdown.
    """

    async def body() -> T | _Stopped:
        loop = asyncio.get_running_loop()
        async with capnp.kj_loop():
            for path in schemas:
                load_schema(path)
            task = asyncio.ensure_future(main(ctx))
            stopped = False

            def stop() -> None:
                nonlocal stopped
                stopped = True
                task.cancel()

            for signum in _STOP_SIGNALS:
                loop.add_signal_handler(signum, stop)
            try:
                if before is not None:
                    before()
                return await task
            except asyncio.CancelledError:
                if stopped:
                    return _Stopped()
                raise
            finally:
                task.cancel()
                for signum in _STOP_SIGNALS:
                    loop.remove_signal_handler(signum)

    result = asyncio.run(body())
    if isinstance(result, _Stopped):
        raise SystemExit(0)
    return result
