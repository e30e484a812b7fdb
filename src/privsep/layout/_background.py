"""Parse a layout in a forked child while the caller goes on importing (start-up time).

`privsep dhcp` needs its layout parsed (PyYAML and the parser: ~25-35 ms of
imports and work here) and, independently, the supervisor, asyncio, pycapnp
and every component's code imported (~100 ms). Both are CPU-bound and the
interpreter runs one at a time, so `start` forks a child that parses on the
other core and pickles the `Layout` (or the problems) back over a pipe; the
parent never imports PyYAML at all. Only for a single-threaded caller with no
event loop running yet (the fork copies it), which is what a CLI is at start.
The pipe carries data between two copies of the same trusted process, before
anything untrusted has been read.
"""

from __future__ import annotations

import gc
import os
import pickle
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import final

from privsep._errors import LayoutError, PrivsepError
from privsep.layout._model import Layout


@final
class PendingLayout:
    """A layout being parsed by a child; `result()` waits for it."""

    def __init__(self, pid: int, fd: int) -> None:
        self._pid = pid
        self._fd = fd

    def result(self) -> Layout:
        """The parsed layout; raises LayoutError (the parser's problems) or PrivsepError."""
        chunks = []
        try:
            while chunk := os.read(self._fd, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(self._fd)
            os.waitpid(self._pid, 0)
        if not chunks:
            raise PrivsepError("the layout parser died without an answer")
        kind, value = pickle.loads(b"".join(chunks))  # noqa: S301 - our own fork, see above
        if kind == "layout" and isinstance(value, Layout):
            return value
        if kind == "problems":
            raise LayoutError(list(value))
        raise PrivsepError(f"parsing the layout failed: {value}")


def start(path: str | Path, overrides: Mapping[str, str] | None = None) -> PendingLayout:
    """Fork a child that parses `path` with `overrides` (see `privsep.layout.load_layout`)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child would write our buffered text again
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    gc.freeze()  # the child must not collect (and close the fds of) inherited garbage
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, which _exits
            _child(read_fd, write_fd, path, overrides)
    finally:
        gc.unfreeze()
    os.close(write_fd)
    return PendingLayout(pid, read_fd)


def _child(
    read_fd: int, write_fd: int, path: str | Path, overrides: Mapping[str, str] | None
) -> None:  # pragma: no cover - runs in the child
    code = 0
    try:
        os.close(read_fd)
        from privsep.layout import load_layout  # noqa: PLC0415

        try:
            answer: tuple[str, object] = ("layout", load_layout(path, overrides))
        except LayoutError as exc:
            answer = ("problems", list(exc.problems))
        except Exception as exc:  # carried to the parent as text
            answer = ("error", f"{type(exc).__name__}: {exc}")
        data = memoryview(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
        while data:
            data = data[os.write(write_fd, data) :]
    except BaseException:  # the parent sees a short read and says so
        code = 1
    finally:
        os._exit(code)
