"""The hook runner of the `dhcp-hook` process: runs one hook script for one event.

How a script is run, and why:
- `execve(script, [script, event], env)` directly (a list, `shell=False`): no
  shell of ours ever sees a value, so `$(...)`, backticks, `;`, quotes and
  newlines in a DHCP option reach the script as bytes of a variable. What the
  script does with them is its own business, exactly as with udhcpc.
- The environment is exactly the variables `_hookenv` built plus `PATH`:
  nothing of the runner's own environment leaks in (no `LD_PRELOAD`, no
  `BASH_ENV`, no `PRIVSEP_*`).
- Names must look like shell variable names (`[A-Za-z_][A-Za-z0-9_]*`).
  Values are `str`; a value holding NUL is rejected with `HookEnvError`
  before anything runs: an environment entry is a C string and cannot carry
  NUL, and silently cutting it would hand the script a different value than
  the one logged. (`_hookenv` never produces NUL: it cuts option strings at
  the first NUL, as udhcpc does.) Non-UTF-8 bytes travel via surrogateescape.
- stdin is /dev/null, the working directory `/`, every other fd closed.
- The script gets its own session and process group; at the timeout the whole
  group is killed with SIGKILL. When the script exits, its output is read for
  a short grace period more, then the pipes are closed: a daemon it started in
  the background keeps running (as with udhcpc) but cannot hold us up.
- stdout and stderr are captured up to `max_output` bytes in total (the rest
  is read and dropped) and logged as JSON lines, one per output line, cut at
  `max_line` characters, at most `max_lines` of them (then one
  `hook_output_skipped` line with the count); then one `hook_exit` line.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from privsep._log import get_logger, log_event
from privsep.services.dhcp._hookenv import HookEnvError, HookEvent

DEFAULT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_TIMEOUT: Final = 30.0
MAX_OUTPUT: Final = 64 * 1024
MAX_LINE: Final = 1024
MAX_LINES: Final = 200  # log lines per run: 64 KiB of one-byte lines would be 32768
_EXIT_GRACE: Final = 0.2  # seconds to drain output after the script itself exited
_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_logger = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class HookResult:
    """How one hook run ended.

    `returncode` is the script's exit status (negative: killed by that signal),
    None when it could not be started (`error` says why).
    """

    event: HookEvent
    returncode: int | None
    timed_out: bool
    duration: float
    stdout: bytes
    stderr: bytes
    truncated: bool
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def build_environment(env: Mapping[str, str], path: str = DEFAULT_PATH) -> dict[bytes, bytes]:
    """The exact environment of the script: `env` plus PATH, as bytes, validated."""
    out: dict[bytes, bytes] = {}
    for name, value in [*env.items(), ("PATH", path)]:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise HookEnvError(f"bad environment variable name {name!r}")
        if not isinstance(value, str):
            raise HookEnvError(f"value of {name} must be str, not {type(value).__name__}")
        if "\x00" in value:
            raise HookEnvError(f"value of {name} holds NUL, which an environment cannot carry")
        key = name.encode()
        if key in out:
            raise HookEnvError(f"{name} is set twice (PATH is the runner's)")
        out[key] = os.fsencode(value)
    return out


class _Capture:
    """Output of both pipes, bounded in total."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = 0
        self.truncated = False
        self.data: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

    def add(self, stream: str, chunk: bytes) -> None:
        room = self.limit - self.kept
        if len(chunk) > room:
            self.truncated = True
            chunk = chunk[: max(room, 0)]
        self.data[stream] += chunk
        self.kept += len(chunk)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _pump(
    proc: subprocess.Popen[bytes], capture: _Capture, deadline: float
) -> tuple[bool, float | None]:
    """Read both pipes until EOF, the deadline, or the grace after exit.

    Returns (timed_out, time the script exited or None).
    """
    pipes: dict[int, str] = {}
    if proc.stdout is not None:
        pipes[proc.stdout.fileno()] = "stdout"
    if proc.stderr is not None:
        pipes[proc.stderr.fileno()] = "stderr"
    exited_at: float | None = None
    with selectors.DefaultSelector() as selector:
        for fd in pipes:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            limit = deadline if exited_at is None else min(deadline, exited_at + _EXIT_GRACE)
            if now >= limit:
                return exited_at is None, exited_at
            for key, _ in selector.select(timeout=min(limit - now, 0.05)):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    capture.add(pipes[key.fd], chunk)
                else:
                    selector.unregister(key.fd)
    return False, exited_at


def _log_output(
    logger: logging.Logger,
    event: HookEvent,
    stream: str,
    data: bytes,
    max_line: int,
    *,
    room: int,
) -> tuple[int, int]:
    """Log up to `room` lines of `data`; returns (lines logged, lines left out)."""
    lines = data.splitlines()
    for raw in lines[:room]:
        line = raw.decode("utf-8", "replace")
        cut = len(line) > max_line
        log_event(
            logger,
            "hook_output",
            hook_event=event.value,
            stream=stream,
            line=line[:max_line],
            **({"line_truncated": True} if cut else {}),
        )
    logged = min(len(lines), room)
    return logged, len(lines) - logged


def _start(argv: list[str], environment: dict[bytes, bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        env=environment,  # bytes keys and values: passed to execve as they are
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd="/",
        close_fds=True,
        start_new_session=True,
        shell=False,
    )


def run_hook(
    script: str | os.PathLike[str],
    event: HookEvent,
    env: Mapping[str, str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    path: str = DEFAULT_PATH,
    max_output: int = MAX_OUTPUT,
    max_line: int = MAX_LINE,
    max_lines: int = MAX_LINES,
    logger: logging.Logger | None = None,
) -> HookResult:
    """Run `script event` with exactly `env` + PATH; never raises for the script's faults.

    Raises `HookEnvError` for an environment that cannot be passed (see module doc).
    """
    logger = logger or _logger
    environment = build_environment(env, path)
    argv = [os.fspath(script), event.value]
    started = time.monotonic()
    try:
        try:
            proc = _start(argv, environment)
        except OSError as exc:
            if exc.errno != errno.ENOEXEC:
                raise
            # No `#!` line: run it with /bin/sh, as udhcpc's execvp (and any shell) does.
            proc = _start(["/bin/sh", *argv], environment)
    except OSError as exc:
        duration = time.monotonic() - started
        log_event(
            logger,
            "hook_failed",
            logging.ERROR,
            hook_event=event.value,
            script=str(Path(script)),
            error=f"{type(exc).__name__}: {exc.strerror or exc}",
        )
        return HookResult(event, None, False, duration, b"", b"", False, error=str(exc))

    capture = _Capture(max_output)
    try:
        timed_out, _ = _pump(proc, capture, started + timeout)
        if timed_out:
            _kill_group(proc)
        returncode = proc.wait()
    finally:
        if proc.poll() is None:  # an exception escaped the pump: leave nothing behind
            _kill_group(proc)
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    duration = time.monotonic() - started

    room, skipped = max_lines, 0
    for stream in ("stdout", "stderr"):
        logged, left_out = _log_output(
            logger, event, stream, bytes(capture.data[stream]), max_line, room=room
        )
        room -= logged
        skipped += left_out
    if skipped:
        log_event(
            logger,
            "hook_output_skipped",
            logging.WARNING,
            hook_event=event.value,
            lines=skipped,
        )
    log_event(
        logger,
        "hook_exit",
        logging.WARNING if returncode or timed_out else logging.INFO,
        hook_event=event.value,
        script=str(Path(script)),
        returncode=returncode,
        timed_out=timed_out,
        duration=round(duration, 3),
        output_truncated=capture.truncated,
    )
    return HookResult(
        event=event,
        returncode=returncode,
        timed_out=timed_out,
        duration=duration,
        stdout=bytes(capture.data["stdout"]),
        stderr=bytes(capture.data["stderr"]),
        truncated=capture.truncated,
    )
