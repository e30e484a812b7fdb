"""Helpers for supervisor tests: `privsep run` as a subprocess, its JSON log lines."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SERVICES = Path(__file__).with_name("services")
EXAMPLE = Path(__file__).parents[2] / "examples" / "counter" / "layout.yaml"


class RunningLayout:
    """`privsep run LAYOUT` in the background; `events` collects its stderr lines."""

    def __init__(self, layout: Path, *overrides: str) -> None:
        argv = [sys.executable, "-m", "privsep", "run", str(layout), "--stop-timeout", "2"]
        for item in overrides:
            argv += ["--set", item]
        self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for raw in self.popen.stderr:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._cond:
            return [json.loads(line) for line in self.lines]

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20
    ) -> dict[str, Any]:
        """The first event (so far or to come) matching `predicate`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    event = json.loads(line)
                    if predicate(event):
                        return event
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (not self._reader.is_alive() and seen == len(self.lines)):
                    raise AssertionError("no matching event; got:\n" + "\n".join(self.lines))
                self._cond.wait(min(left, 0.5))

    def started(self, child: str, after: int = 0) -> dict[str, Any]:
        """The `start` event of `child`'s run number `after` (0 = first)."""
        count = iter(range(after + 1))

        def match(e: dict[str, Any]) -> bool:
            ok = e.get("event") == "start" and e.get("child") == child
            return ok and next(count) == after

        return self.wait_for(match)

    def wait(self, timeout: float = 30) -> int:
        code = self.popen.wait(timeout)
        self._reader.join(5)
        return code

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._reader.join(5)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


def component_pid(spawned: int, timeout: float = 10) -> int:
    """The sandboxed component for the pid `spawn` returned: pid 1 of its own pid namespace.

    That is the spawned process itself, or its child if the launcher forks a waiter.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        candidates = [spawned]
        with contextlib.suppress(FileNotFoundError):
            children = Path(f"/proc/{spawned}/task/{spawned}/children").read_text()
            candidates += map(int, children.split())
        for pid in candidates:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:
                continue
            nspid = next(line for line in status.splitlines() if line.startswith("NSpid:"))
            if len(nspid.split()) > 2 and nspid.split()[-1] == "1":
                return pid
        time.sleep(0.01)
    raise AssertionError(f"no sandboxed component for pid {spawned}")


def wait_locked(pid: int, timeout: float = 10) -> None:
    """Until `pid` runs under seccomp (the last lock the launcher puts on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        if "\nSeccomp:\t2\n" in status:
            return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} never got locked")
