"""The supervisor engine: start, watch, restart and stop the processes of a layout.

One asyncio task per restart group (processes linked by channels) runs the
group's life cycle: start every member in layout order with fresh channels,
wait for exits, and on an exit the policy restarts, stop the rest of the group,
sleep the backoff and start again. The main task waits for all groups to end,
for SIGTERM/SIGINT, or for a required process to give up, then stops every
child still running in reverse start order and closes every fd.

Children are watched through pidfds and their output through non-blocking
pipes, all on the event loop. Spawning execs a helper, or with `fork=True`
forks this process (which runs no KJ loop and no other thread) after importing
every component's code once: see `privsep.sandbox.spawn`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from privsep._log import get_logger, log_event
from privsep.layout._model import Layout, Process
from privsep.supervisor._lines import LineSplitter, json_object, render
from privsep.supervisor._policy import backoff, decide, restart_groups

logger = get_logger(__name__)

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


class Handle(Protocol):
    """What the supervisor needs of a started process (`privsep.sandbox.Sandboxed`)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


class Spawner(Protocol):
    def __call__(
        self,
        process: Process,
        fds: Mapping[str, int],
        *,
        layout: Layout,
        stdin: Any = ...,
        stdout: Any = ...,
        stderr: Any = ...,
    ) -> Handle: ...


def _sandbox_spawn(
    process: Process,
    fds: Mapping[str, int],
    *,
    layout: Layout,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    fork: bool = False,
) -> Handle:
    from privsep.sandbox import spawn  # noqa: PLC0415  # the launcher loads on first start

    handle: Handle = spawn(
        process, fds, layout=layout, stdin=stdin, stdout=stdout, stderr=stderr, fork=fork
    )
    return handle


def _open_resources(process: Process) -> dict[str, int]:
    if not process.fds:
        return {}
    from privsep.sandbox._resources import open_resources  # noqa: PLC0415  # only when needed

    return open_resources(process)


def _subreaper(on: bool) -> bool:
    """Set whether orphaned descendants re-parent to this process; returns the old setting."""
    libc = ctypes.CDLL(None, use_errno=True)
    old = ctypes.c_int(0)
    libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(old), 0, 0, 0)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)
    return bool(old.value)


def _describe(returncode: int) -> dict[str, Any]:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return {"signal": name}
    return {"code": returncode}


@dataclass(eq=False)
class _Child:
    process: Process
    handle: Handle | None = None
    exited: asyncio.Future[int] | None = None
    restarts: int = 0  # restarts spent since the last stable run
    started_at: float = 0.0
    sequence: int = 0  # global start order, for stopping in reverse
    gave_up: bool = False
    fds: list[int] = field(default_factory=list)  # pidfd and pipes to close at exit

    @property
    def running(self) -> bool:
        return self.exited is not None and not self.exited.done()


class Supervisor:
    """Runs a layout's processes until they end, one gives up for good, or a signal stops it.

    `stop_timeout`: seconds between SIGTERM and SIGKILL when stopping a child.
    `stable_after`: a run at least this long resets the process's restart count.
    `on_exit(process_name, returncode)`, if given, sees every exit before the
    restart policy; returning an int ends the service: every child is stopped
    and `run` returns that int (e.g. a DHCP client's `-q` once bound).
    `on_event(process_name, event)`, if given, sees each JSON object a child logs
    on stderr, after it is forwarded. The child wrote it: it is claims, not facts.
    `spawn` defaults to `privsep.sandbox.spawn`; `output` receives the JSON lines
    forwarded from children (the supervisor's own events go through `privsep._log`).
    `fork=True` (with the default `spawn`): import every component's code here
    first (`privsep.component._runner.preload`), then start children by fork without
    exec, which cuts each start from tens of milliseconds to a few.

    While it runs, the supervisor is a child subreaper: should a sandboxed
    process lose its parent inside the launcher, it is re-parented to the
    supervisor and reaped (killed first at exit), never left behind.
    """

    def __init__(
        self,
        layout: Layout,
        *,
        stop_timeout: float = 5.0,
        stable_after: float = 30.0,
        spawn: Spawner = _sandbox_spawn,
        open_resources: Callable[[Process], dict[str, int]] = _open_resources,
        output: TextIO | None = None,
        on_exit: Callable[[str, int], int | None] | None = None,
        on_event: Callable[[str, Mapping[str, object]], None] | None = None,
        fork: bool = False,
    ) -> None:
        self.layout = layout
        self._fork = fork and spawn is _sandbox_spawn
        if self._fork:
            spawn = functools.partial(_sandbox_spawn, fork=True)
        self._on_exit = on_exit
        self._on_event = on_event
        self._exit_code: int | None = None
        self.stop_timeout = stop_timeout
        self.stable_after = stable_after
        self._spawn = spawn
        self._open_resources = open_resources
        self._output = output
        self._children = {p.name: _Child(p) for p in layout.processes}
        self._groups = restart_groups(layout.processes)
        self._sequence = 0
        self._failed = False
        self._stop: asyncio.Event | None = None
        self._readers: dict[int, Callable[[], None]] = {}

    # --- public ------------------------------------------------------------------

    def run(self) -> int:
        """Supervise in the foreground; 0 when everything ended normally or on a signal."""
        return asyncio.run(self.run_async())

    async def run_async(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        was_subreaper = _subreaper(True)
        loop.add_signal_handler(signal.SIGCHLD, self._reap_orphans)
        log_event(logger, "supervisor-start", service=self.layout.service, pid=os.getpid())
        if self._fork:
            from privsep.component._runner import preload  # noqa: PLC0415

            for name, problem in preload(self.layout):
                log_event(logger, "preload-skipped", logging.WARNING, child=name, reason=problem)
        tasks = [asyncio.create_task(self._supervise(group)) for group in self._groups]
        stopper = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            while not stopper.done() and not all(t.done() for t in tasks):
                await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [*tasks, stopper]:
                task.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
            await self._stop_all()
            await self._reap_orphans_until_none()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                loop.remove_signal_handler(signum)
            _subreaper(was_subreaper)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]  # a bug: surface it
        code = 1 if self._failed else 0
        if self._exit_code is not None and not self._failed:
            code = self._exit_code
        log_event(logger, "supervisor-exit", code=code)
        return code

    def signal_child(self, name: str, sig: int) -> bool:
        """Send `sig` to the running process `name`; False when it is not running."""
        child = self._children.get(name)
        if child is None or not child.running or child.handle is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            child.handle.send_signal(sig)
        return True

    def stop(self) -> None:
        """Ask a running supervisor to stop everything (as SIGTERM does)."""
        if self._stop is not None:
            self._stop.set()

    # --- groups ------------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        log_event(logger, "signal", signal=signal.Signals(signum).name)
        self.stop()

    async def _supervise(self, group: tuple[str, ...]) -> None:
        members = [self._children[name] for name in group]
        while True:
            trigger = self._start_group(members)
            while trigger is None and any(c.running for c in members):
                running = [c.exited for c in members if c.running]
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)  # type: ignore[type-var]
                for child in members:
                    if trigger is None and child.exited is not None and child.exited in done:
                        trigger = self._after_exit(child, child.exited.result())
            if trigger is None:
                return
            attempt = trigger.restarts
            delay = backoff(trigger.process.restart, attempt)
            others = [c.process.name for c in members if c is not trigger and not c.gave_up]
            log_event(
                logger,
                "restart",
                child=trigger.process.name,
                attempt=attempt,
                max_restarts=trigger.process.restart.max_restarts,
                delay=delay,
                peers=others,
            )
            for child in sorted(members, key=lambda c: -c.sequence):
                if child.running:
                    await self._stop_child(child, reason=f"peer {trigger.process.name} restarts")
            await asyncio.sleep(delay)

    def _after_exit(self, child: _Child, returncode: int) -> _Child | None:
        """Log the exit and decide; returns `child` when its group must restart."""
        loop = asyncio.get_running_loop()
        if self._on_exit is not None:
            final = self._on_exit(child.process.name, returncode)
            if final is not None:
                log_event(logger, "service-done", child=child.process.name, code=final)
                self._exit_code = final
                self.stop()
                return None
        if loop.time() - child.started_at >= self.stable_after:
            child.restarts = 0
        decision = decide(child.process.restart, returncode, child.restarts)
        if decision == "restart":
            child.restarts += 1
            return child
        if decision == "give-up":
            child.gave_up = True
            log_event(
                logger,
                "give-up",
                logging.ERROR,
                child=child.process.name,
                restarts=child.restarts,
                policy=child.process.restart.policy,
                required=child.process.required,
                **_describe(returncode),
            )
            if child.process.required:
                self._failed = True
                self.stop()
        return None

    def _start_group(self, members: list[_Child]) -> _Child | None:
        """Start every member (but those given up) with fresh channels, in layout order.

        A member that cannot start counts as failed at once; returns it when the
        group must restart because of that.
        """
        ends: dict[tuple[str, str], socket.socket] = {}
        for child in members:
            for channel in child.process.channels:
                if (channel.name, child.process.name) not in ends:
                    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                    ends[(channel.name, child.process.name)] = mine
                    ends[(channel.name, channel.peer)] = theirs
        try:
            for child in members:
                if child.gave_up:
                    continue
                channel_fds = {
                    ch.name: ends[(ch.name, child.process.name)].fileno()
                    for ch in child.process.channels
                }
                if not self._start_child(child, channel_fds):
                    trigger = self._after_exit(child, 1)
                    if trigger is not None:
                        return trigger
                    if self._stop is not None and self._stop.is_set():
                        break  # a required member gave up: start none of the rest
        finally:
            for end in ends.values():
                end.close()  # the children hold their own copies now
        return None

    # --- one child ---------------------------------------------------------------

    def _start_child(self, child: _Child, channel_fds: dict[str, int]) -> bool:
        loop = asyncio.get_running_loop()
        process = child.process
        child.started_at = loop.time()  # a failed start is a run of length zero
        resources: dict[str, int] = {}
        out_r = out_w = err_r = err_w = -1
        try:
            resources = self._open_resources(process)
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            handle = self._spawn(
                process,
                {**resources, **channel_fds},
                layout=self.layout,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
            )
            pidfd = os.pidfd_open(handle.pid)
        except Exception as exc:  # a child that cannot start is a failed child
            for fd in (out_r, err_r):
                if fd >= 0:
                    os.close(fd)
            log_event(
                logger,
                "start-failed",
                logging.ERROR,
                child=process.name,
                error=f"{type(exc).__name__}: {exc}",
            )
            return False
        finally:
            for fd in (*resources.values(), out_w, err_w):
                if fd >= 0:
                    os.close(fd)
        self._sequence += 1
        child.handle = handle
        child.sequence = self._sequence
        child.exited = loop.create_future()
        child.fds = [pidfd, out_r, err_r]
        self._forward(child, out_r, "stdout")
        self._forward(child, err_r, "stderr")
        loop.add_reader(pidfd, self._on_pidfd, child, pidfd)
        log_event(
            logger,
            "start",
            child=process.name,
            pid=handle.pid,
            restarts=child.restarts,
            fds=[*resources, *channel_fds],
        )
        return True

    def _forward(self, child: _Child, fd: int, stream: str) -> None:
        os.set_blocking(fd, False)
        splitter = LineSplitter()
        loop = asyncio.get_running_loop()
        name = child.process.name

        def readable() -> None:
            eof = False
            lines: list[tuple[bytes, bool]] = []
            while True:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    data = b""
                if not data:
                    eof = True
                    break
                lines += splitter.feed(data)
            if eof:
                lines += splitter.close()
                self._close(child, fd)
            out = self._output or sys.stderr
            for line, truncated in lines:
                out.write(render(name, line, truncated, stream) + "\n")
            out.flush()
            if self._on_event is not None and stream == "stderr":
                for line, truncated in lines:
                    event = json_object(line, truncated)
                    if event is not None:
                        self._on_event(name, event)

        loop.add_reader(fd, readable)
        self._readers[fd] = readable

    def _on_pidfd(self, child: _Child, pidfd: int) -> None:
        assert child.handle is not None and child.exited is not None
        returncode = child.handle.poll()
        if returncode is None:
            return
        loop = asyncio.get_running_loop()
        self._close(child, pidfd)
        for fd in list(child.fds):  # drain what the child wrote before dying
            reader = self._readers.get(fd)
            if reader is not None:
                reader()
        log_event(
            logger,
            "exit",
            child=child.process.name,
            pid=child.handle.pid,
            runtime=round(loop.time() - child.started_at, 3),
            **_describe(returncode),
        )
        child.exited.set_result(returncode)

    async def _stop_child(self, child: _Child, reason: str) -> None:
        assert child.handle is not None and child.exited is not None
        log_event(logger, "stop", child=child.process.name, pid=child.handle.pid, reason=reason)
        with contextlib.suppress(ProcessLookupError):
            child.handle.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(child.exited), self.stop_timeout)
        except TimeoutError:
            log_event(logger, "kill", logging.WARNING, child=child.process.name)
            with contextlib.suppress(ProcessLookupError):
                child.handle.kill()
            await asyncio.shield(child.exited)

    async def _stop_all(self) -> None:
        for child in sorted(self._children.values(), key=lambda c: -c.sequence):
            if child.running:
                await self._stop_child(child, reason="supervisor stops")
        for child in self._children.values():
            for fd in list(child.fds):
                self._close(child, fd)

    def _orphans(self) -> set[int]:
        """Sandboxed processes re-parented to us: children in another pid namespace.

        Each component is pid 1 of its own pid namespace, so the components we
        track are excluded by pid; a child of this process in our own pid
        namespace (anything not started through `spawn`) is never touched.
        """
        ours = {c.handle.pid for c in self._children.values() if c.handle is not None}
        own_ns = Path("/proc/self/ns/pid").stat().st_ino
        found: set[int] = set()
        for task in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError):
                found.update(int(pid) for pid in (task / "children").read_text().split())
        orphans = set()
        for pid in found - ours:
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/ns/pid").stat().st_ino != own_ns:
                    orphans.add(pid)
        return orphans

    def _reap_orphans(self) -> None:
        for pid in self._orphans():
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    log_event(logger, "reaped-orphan", pid=pid)

    async def _reap_orphans_until_none(self) -> None:
        """At exit, kill and reap any orphan still around (none, normally)."""
        for _ in range(100):
            self._reap_orphans()
            orphans = self._orphans()
            if not orphans:
                return
            for pid in orphans:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.01)

    def _close(self, child: _Child, fd: int) -> None:
        if fd in child.fds:
            asyncio.get_running_loop().remove_reader(fd)
            child.fds.remove(fd)
            self._readers.pop(fd, None)
            os.close(fd)
