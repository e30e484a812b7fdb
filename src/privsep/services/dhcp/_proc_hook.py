"""`dhcp-hook`: runs the hook script (`-s`) for udhcpc's events, in its own sandbox.

It serves `Hook` to the actuator only. Each call runs `SCRIPT EVENT` through
`_hookrun.run_hook`: execve with exactly the given variables + PATH, no shell
of ours, stdin /dev/null, output logged as JSON, killed at the timeout. Calls
run one at a time, in order (udhcpc runs its script synchronously too). The
process has no capability, an empty network namespace, and sees only the
script and the system's binaries (read-only).

The process is pid 1 of its own pid namespace, so whatever a script leaves
running in the background (`daemon &`) is reparented to it when the script
exits, and must be reaped here or it stays a zombie for the process's life.
Orphans are reaped on SIGCHLD and after each run, never while a script runs:
`waitpid(-1)` then could take the script's own exit status from `run_hook`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any, Final

from privsep._log import get_logger, log_event
from privsep.services.dhcp._hookenv import HookEnvError, HookEvent
from privsep.services.dhcp._hookrun import run_hook

_EVENTS: Final = {event.value: event for event in HookEvent}

_logger = get_logger(__name__)


class HookService:
    """`Hook` of hook.capnp."""

    def __init__(self, script: str, timeout: float) -> None:
        self._script = script
        self._timeout = timeout
        self._lock = asyncio.Lock()

    async def run(self, event: str, env: Any, **kwargs: Any) -> int:
        kind = _EVENTS.get(str(event))
        if kind is None:
            log_event(_logger, "hook-refused", logging.WARNING, hook_event=str(event)[:20])
            return -1
        variables = {str(var.key): str(var.value) for var in env}
        async with self._lock:
            try:
                result = await asyncio.to_thread(
                    run_hook, self._script, kind, variables, timeout=self._timeout
                )
            except HookEnvError as exc:
                log_event(_logger, "hook-refused", logging.WARNING, error=str(exc))
                return -1
            finally:
                reap_orphans()
        return -1 if result.returncode is None else result.returncode

    def on_sigchld(self) -> None:
        if not self._lock.locked():  # a script may be running: run() reaps when it ends
            reap_orphans()


def reap_orphans() -> int:
    """Collect every exited child (without blocking); returns how many."""
    reaped = 0
    while True:
        with contextlib.suppress(ChildProcessError):
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid:
                reaped += 1
                continue
        return reaped


async def main(ctx: Any) -> None:
    ctx.log  # noqa: B018 - configures JSON logging with our process name
    script = ctx.params["hook"]
    timeout = float(ctx.params.get("hook_timeout") or 30)
    service = HookService(script, timeout)
    asyncio.get_running_loop().add_signal_handler(signal.SIGCHLD, service.on_sigchld)
    await ctx.serve("hook", service)
