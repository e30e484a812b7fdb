"""udhcpc's `-b` for `privsep dhcp`: return to the caller once the lease is configured,
or once the first round of DISCOVERs went unanswered, while the client keeps running.

`start()` forks before anything else has run (no thread, no event loop, no pycapnp
yet). The caller's process only waits on a pipe: one byte means "the client is on its
own now" and it exits 0, as udhcpc's parent does; end of file without that byte means
the client ended first, and the caller exits with the client's status (2 for a bad pid
file, say). SIGINT, SIGTERM and SIGHUP that reach the waiting caller (Ctrl-C, ifup's
timeout) are passed on as SIGINT/SIGTERM, so the client stops cleanly as in the
foreground.

The client starts a new session at once: after the caller has gone, no terminal's job
control reaches it. When `detach()` is called it writes the byte and points stdin,
stdout and stderr at /dev/null, except a stream that is a regular file: with
`2>>/var/log/privsep-dhcp.log` the JSON log lines keep going there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
from typing import Final, NoReturn

_FORWARDED: Final = {
    signal.SIGINT: signal.SIGINT,
    signal.SIGTERM: signal.SIGTERM,
    signal.SIGHUP: signal.SIGTERM,
}


class Detacher:
    """The client's end: `detach()` once, when the caller may go."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @property
    def detached(self) -> bool:
        return self._fd is None

    def detach(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):  # the caller is gone already: nothing to tell
            os.write(fd, b"1")
        os.close(fd)
        _quiet_stdio()


def start() -> Detacher:
    """Fork; in the caller's process, wait and exit (never returns). In the client's,
    return its `Detacher`."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid != 0:
        os.close(write_end)
        _wait_and_exit(pid, read_end)
    os.close(read_end)
    os.setsid()
    return Detacher(write_end)


def _wait_and_exit(pid: int, read_end: int) -> NoReturn:
    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, _FORWARDED[signal.Signals(signum)])

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    detached = os.read(read_end, 1)  # retried after a handled signal (PEP 475)
    if detached:
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)


def _quiet_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in (0, 1, 2):
            try:
                regular = stat.S_ISREG(os.fstat(fd).st_mode)
            except OSError:
                regular = False
            if not regular or fd == 0:
                os.dup2(null, fd)
    finally:
        os.close(null)
