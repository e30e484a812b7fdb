"""Fixtures for the kernel-level sandbox probes: run a script through `privsep probe`."""

from __future__ import annotations

import contextlib
import os
import signal
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from privsep._cli import main

LAYOUT = Path(__file__).parent / "layouts" / "probes.yaml"

# Prepended to every probe script: raw syscalls through libc, returning the errno.
PRELUDE = """\
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)

def raw(nr, *args):
    result = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return result if result >= 0 else -ctypes.get_errno()
"""


@dataclass(frozen=True, slots=True)
class Probe:
    code: int
    out: str
    err: str
    mode: str  # how the process was started: "exec" (helper) or "fork" (privsep dhcp's way)

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A host directory for the `writer` process: rw (Landlock-granted), ro, nolandlock."""
    state = tmp_path / "state"
    for sub in ("rw", "ro", "nolandlock"):
        (state / sub).mkdir(parents=True)
        # DAC allows everyone: whatever denies an access is the sandbox.
        (state / sub).chmod(0o777)
    secret = state / "secret"
    secret.write_text("root only\n")
    secret.chmod(0o600)  # owned by root: readable inside only with CAP_DAC_OVERRIDE
    return state


@contextlib.contextmanager
def _event_loop_wakeup_fd(on: bool) -> Iterator[None]:
    """Fork as the supervisor does: from a process whose event loop set a signal wakeup fd."""
    if not on:
        yield
        return
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old = signal.set_wakeup_fd(w)
    try:
        yield
    finally:
        signal.set_wakeup_fd(old)
        os.close(r)
        os.close(w)


@pytest.fixture(params=["exec", "fork"])
def probe(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    state_dir: Path,
    capfd: pytest.CaptureFixture[str],
) -> Iterator[Callable[..., Probe]]:
    """Every probe runs twice: started through the exec helper and by fork without exec."""
    if os.geteuid() != 0:
        pytest.skip("sandbox probes need root")
    counter = iter(range(1000))
    data = tmp_path / "data.txt"
    data.write_text("granted file\n")

    def run(process: str, body: str, *sets: str) -> Probe:
        script = tmp_path / f"probe_{next(counter)}.py"
        script.write_text(PRELUDE + textwrap.dedent(body))
        capfd.readouterr()
        with _event_loop_wakeup_fd(request.param == "fork"):
            code = main(
                [
                    "probe",
                    str(LAYOUT),
                    process,
                    str(script),
                    "--set",
                    f"state={state_dir}",
                    "--set",
                    f"file={data}",
                    *(arg for item in sets for arg in ("--set", item)),
                    *(["--fork"] if request.param == "fork" else []),
                ]
            )
        out, err = capfd.readouterr()
        return Probe(code, out, err, request.param)

    yield run
