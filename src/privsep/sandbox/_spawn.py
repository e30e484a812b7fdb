"""`spawn`: start one process of a layout in its sandbox, through the exec helper.

The parent side does everything that can be decided up front (`_plan.build`:
kernel probes, degradations, seccomp compile, mount list), reserves a dynamic
uid, creates the cgroups, and execs

    python -S -E -c BOOT FD

where FD is a memfd holding the marshalled plan. `-S -E`: no site import, no
PYTHON* variables; the plan carries the spawner's `sys.path` instead, so the
component imports what the supervisor could. subprocess starts it with
fork+exec in C (no `preexec_fn`), so `spawn` is safe to call while an asyncio
or KJ loop runs.

The new pid namespace is made here, around that fork+exec: the calling thread
unshares CLONE_NEWPID (which only affects its future children), starts the
helper, and setns()es back. The helper is thus born pid 1 of its namespace and
becomes the component itself: no extra fork, no waiter process, and the pid the
caller holds is the component's (signals reach it directly; its exit status is
the component's). Call `spawn` from a thread that lives as long as the sandbox
(the event loop's): the sandbox's parent-death signal follows that thread.
"""

from __future__ import annotations

import gc
import itertools
import marshal
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any, final

from privsep.layout._model import Layout, Process
from privsep.sandbox import _cgroups, _namespaces, _users
from privsep.sandbox._plan import USERS_DIR, SandboxError, build, privsep_root

__all__ = ["SandboxError", "Sandboxed", "spawn"]

_BOOT = "import sys;sys.path[0]={root!r};from privsep.sandbox._helper import main;main()"

# The exec helper's exit status when the sandbox could not be built (a JSON line on stderr
# says why); the component's own status otherwise.
EXIT_SETUP_FAILED = 125


@final
class Sandboxed:
    """A started sandboxed process (a thin wrapper around `subprocess.Popen`).

    `pid` is the component's pid on the host (it is pid 1 of its own pid
    namespace). Once `poll`/`wait` have seen it exit, its dynamic uid and
    cgroups are released.
    """

    def __init__(
        self,
        name: str,
        popen: subprocess.Popen[bytes] | _Forked,
        resources: list[Any] | None = None,
    ) -> None:
        self.name = name
        self._popen = popen
        self._resources = resources or []

    def _release(self) -> None:
        for resource in self._resources:
            if isinstance(resource, int):
                os.close(resource)  # the uid lock, the liveness pipe
            else:
                _cgroups.remove(resource)
        self._resources = []

    def __repr__(self) -> str:
        return f"Sandboxed(name={self.name!r}, pid={self.pid}, returncode={self.returncode})"

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    @property
    def stdin(self) -> IO[bytes] | None:
        return self._popen.stdin

    @property
    def stdout(self) -> IO[bytes] | None:
        return self._popen.stdout

    @property
    def stderr(self) -> IO[bytes] | None:
        return self._popen.stderr

    def wait(self, timeout: float | None = None) -> int:
        returncode = self._popen.wait(timeout)
        self._release()
        return returncode

    def poll(self) -> int | None:
        returncode = self._popen.poll()
        if returncode is not None:
            self._release()
        return returncode

    def communicate(
        self, input: bytes | None = None, timeout: float | None = None
    ) -> tuple[bytes | None, bytes | None]:
        out, err = self._popen.communicate(input, timeout)
        self._release()
        return out, err

    def send_signal(self, sig: int) -> None:
        self._popen.send_signal(sig)

    def terminate(self) -> None:
        self._popen.terminate()

    def kill(self) -> None:
        self._popen.kill()

    def __enter__(self) -> Sandboxed:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the pipes and wait (as `Popen` does); kill first if still running."""
        if self._popen.poll() is None:
            self._popen.kill()
        self._popen.__exit__(None, None, None)
        self._release()


def spawn(
    process: Process,
    fds: Mapping[str, int],
    *,
    layout: Layout,
    script: str | None = None,
    argv: Sequence[str] | None = None,
    stdin: Any = subprocess.DEVNULL,
    stdout: Any = None,
    stderr: Any = None,
    fork: bool = False,
) -> Sandboxed:
    """Start `process` in its sandbox with exactly `fds` as fds 3, 4, ... (in order).

    `fds` maps names (LISTEN_FDNAMES) to fds of the caller, which stay open
    here. `script` runs that Python file as `__main__` instead of the entry,
    after every lock (privsep probe); `argv` execs that command after the
    locks (privsep shell). Raises `SandboxError` when the sandbox cannot be
    built as asked (a missing mechanism without the matching degradation).
    `fork`: start without exec where that is safe (see the module's notes).
    """
    plan, env = build(process, fds, layout=layout, script=script, argv=argv)
    resources: list[Any] = []
    try:
        if plan["user"] is None:
            uid, lock = _users.allocate(USERS_DIR)
            resources.append(lock)
            plan["uid"] = plan["gid"] = uid
        else:
            plan["uid"], plan["gid"] = plan["user"]
        cgroups = _cgroups.create(f"{process.name}-{os.getpid()}-{next(_serial)}", plan["cgroups"])
        resources.append(cgroups)
        plan["cgroup_dirs"] = cgroups
        alive, alive_w = os.pipe()  # the helper sees EOF on `alive` if we are gone
        resources.append(alive_w)
        plan["alive"] = alive
        stdio = _forkable_stdio(stdin, stdout, stderr) if fork and _single_threaded() else None
        if stdio is not None:
            try:
                with _new_pid_namespace():
                    pid = _fork(plan, env, stdio, close=alive_w)
            finally:
                os.close(alive)
                if stdin == subprocess.DEVNULL:
                    os.close(stdio[0])
            return Sandboxed(process.name, _Forked(pid), resources)
        spec = os.memfd_create(f"privsep-plan-{process.name}")
        try:
            os.write(spec, marshal.dumps(plan))
            os.lseek(spec, 0, os.SEEK_SET)
            argv0 = [sys.executable, "-S", "-E", "-c", _BOOT.format(root=privsep_root()), str(spec)]
            with _new_pid_namespace():
                popen = subprocess.Popen(
                    argv0,
                    env=env,
                    pass_fds=(spec, alive, *fds.values()),
                    stdin=stdin,
                    stdout=stdout,
                    stderr=stderr,
                    cwd="/",
                )
        finally:
            os.close(spec)
            os.close(alive)
    except BaseException:
        Sandboxed(process.name, None, resources)._release()  # type: ignore[arg-type]
        raise
    return Sandboxed(process.name, popen, resources)


def _single_threaded() -> bool:
    """One thread in this process, counting those `threading` does not know (C extensions').

    A thread just joined may still be listed for a few microseconds while the
    kernel tears it down (the netns helper thread of `_resources`), so a count
    above one is looked at again for up to ~10 ms unless a Python thread is alive.
    """
    for _ in range(50):
        try:
            if len(os.listdir("/proc/self/task")) == 1:  # noqa: PTH208 - one syscall
                return True
        except OSError:
            return False
        threading = sys.modules.get("threading")
        if threading is not None and threading.active_count() > 1:
            return False
        time.sleep(0.0002)
    return False


def _forkable_stdio(stdin: Any, stdout: Any, stderr: Any) -> tuple[int, int, int] | None:
    """The fds a forked child gets as 0, 1, 2; None when only exec can do it (pipes)."""
    fds: list[int] = []
    for target, stream in enumerate((stdin, stdout, stderr)):
        if stream is None:
            fds.append(target)
        elif isinstance(stream, int) and stream >= 0:
            fds.append(stream)
        elif stream == subprocess.DEVNULL:
            fds.append(-1)
        elif hasattr(stream, "fileno"):
            fds.append(stream.fileno())
        else:
            return None  # PIPE and the like
    if -1 in fds[1:]:
        return None  # output to /dev/null: rare enough not to be worth another open/close
    if fds[0] == -1:
        fds[0] = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # closed by `spawn`
    return fds[0], fds[1], fds[2]


def _fork(
    plan: dict[str, Any], env: dict[str, str], stdio: tuple[int, int, int], close: int
) -> int:
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()  # or the child writes our buffered text a second time
    from privsep.sandbox._helper import run_forked  # noqa: PLC0415  # here: once, not per child

    # Signals stay blocked until the child has dropped our handlers and wakeup fd: one
    # delivered in between would run our handler there, or write into our loop's self-pipe
    # (shared by the fork), which this process would take for a signal of its own.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    # The child must never collect (and so close the fds of) garbage it inherits.
    gc.freeze()
    try:
        pid = os.fork()
        if pid == 0:
            run_forked(plan, env, stdio, close, mask)  # never returns
    finally:
        gc.unfreeze()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    return pid


@final
class _Forked:
    """What `Sandboxed` needs of a `Popen`, for a child started by fork without exec."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = self.stdout = self.stderr = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            while self.returncode is None:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode
        deadline = time.monotonic() + timeout
        while (code := self.poll()) is None:
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout)
            time.sleep(0.005)
        return code

    def communicate(
        self, input: bytes | None = None, timeout: float | None = None
    ) -> tuple[None, None]:
        self.wait(timeout)
        return None, None

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def __exit__(self, *exc_info: object) -> None:
        self.wait()


_serial = itertools.count()
_own_pid_ns: list[int] = []


@contextmanager
def _new_pid_namespace() -> Iterator[None]:
    """Children this thread starts inside the block are born in a new pid namespace."""
    if not _own_pid_ns:
        _own_pid_ns.append(os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC))
    try:
        _namespaces.unshare(_namespaces.CLONE_NEWPID)
    except OSError as exc:
        raise SandboxError(f"cannot create a pid namespace (root needed): {exc}") from exc
    try:
        yield
    finally:
        _namespaces.setns_fd(_own_pid_ns[0], _namespaces.CLONE_NEWPID)
