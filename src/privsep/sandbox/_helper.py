"""The exec helper: the child side of `spawn`, run as `python -S -E -c BOOT FD`.

FD is a memfd holding the marshalled plan (`_plan.py`). Imports stay minimal
(os, marshal, _ctypes, _signal: no json, no typing, not even ctypes) because
every millisecond here is start-up time of every sandboxed process.

The helper is already pid 1 of a new pid namespace (the spawner unshared it
for its child, see `_spawn.py`), so it forks nothing: it joins its cgroups,
unshares its other namespaces, builds the root filesystem, drops privileges,
closes what it was not granted, and becomes the component.

`run_forked` is the same child side for `spawn(fork=True)`: no exec, so it
first undoes what a fork inherits and an exec would have reset (signal
handlers and asyncio's wakeup fd, stdio, environment, working directory).
"""

# ruff: noqa: PLC0415 - rarely needed modules load where needed: start-up time

from __future__ import annotations

import marshal
import os
import sys

from privsep.sandbox import _caps, _libc, _mounts, _namespaces

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:  # the C module: `signal` wraps it in enums, ~3 ms of every start
    import _signal as signal

EXIT_SETUP_FAILED = 125
PR_SET_PDEATHSIG = 1
F_DUPFD_CLOEXEC = 1030


def _report(name: str, error: BaseException) -> None:
    """One JSON log line on stderr (json imported only on this error path)."""
    import json
    import time

    line = {
        "ts": round(time.time(), 6),
        "level": "error",
        "process": name,
        "event": "sandbox-setup-failed",
        "error": str(error),
    }
    try:  # noqa: SIM105 - contextlib is an import the exec helper does without
        os.write(2, (json.dumps(line) + "\n").encode())
    except OSError:
        pass


def _read_plan(fd: int) -> dict[str, object]:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    plan = marshal.loads(b"".join(chunks))  # noqa: S302 - written by our spawner, in a memfd
    assert isinstance(plan, dict)
    return plan


def _remap_fds(fds: list[int]) -> None:
    """Move the granted fds to 3, 4, ... in order and close every other fd."""
    n = len(fds)
    # First out of the way (above the target range), then down into place.
    high = [_libc.check(_libc.call("fcntl", fd, F_DUPFD_CLOEXEC, 3 + n), "dup") for fd in fds]
    for i, fd in enumerate(high):
        os.dup2(fd, 3 + i, inheritable=True)
    os.closerange(3 + n, 1 << 20)  # close_range(2) where the kernel has it


def _terminate(_signum: int, _frame: object) -> None:
    # pid 1 of a pid namespace ignores signals it has no handler for.
    raise SystemExit(0)


def _sandbox(plan: dict[str, object]) -> None:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    os.umask(0o022)
    netns = plan["netns"]
    if isinstance(netns, str):
        _namespaces.setns_path(netns, _namespaces.CLONE_NEWNET)
    cgroups = plan["cgroup_dirs"]
    assert isinstance(cgroups, list)
    if cgroups:
        from privsep.sandbox import _cgroups

        _cgroups.join(cgroups)  # before the cgroup namespace: it is rooted where we are
    unshare = plan["unshare"]
    assert isinstance(unshare, int)
    _namespaces.unshare(unshare)
    nr, mounts = plan["nr"], plan["mounts"]
    assert isinstance(nr, dict)
    assert isinstance(mounts, list)
    mounter = _mounts.Mounter(str(plan["staging"]), nr)
    mounter.build(mounts)
    mounter.pivot()
    rlimits = plan["rlimits"]
    assert isinstance(rlimits, list)
    if rlimits:
        from privsep.sandbox import _rlimits

        _rlimits.apply(rlimits)
    uid, gid, caps = plan["uid"], plan["gid"], plan["caps"]
    assert isinstance(uid, int) and isinstance(gid, int) and isinstance(caps, int)
    if plan["userns"]:
        # Last of the namespaces: every mount above was made with the host's root.
        _namespaces.enter_user_namespace(uid, gid)
    _caps.drop_privileges(uid, gid, caps)
    # After the uid change, which clears it: when the spawner dies, so does the sandbox
    # (pid 1 gone, the kernel kills the rest of the pid namespace).
    _libc.call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The spawner may have died before that: then its end of this pipe is closed.
    alive = plan["alive"]
    assert isinstance(alive, int)
    os.set_blocking(alive, False)
    try:
        if os.read(alive, 1) == b"":
            os._exit(EXIT_SETUP_FAILED)
    except BlockingIOError:
        pass
    fds = plan["fds"]
    assert isinstance(fds, list)
    _remap_fds(fds)  # closes `alive` and everything else not granted
    if fds:
        os.environ["LISTEN_PID"] = str(os.getpid())


def main() -> None:
    plan: dict[str, object] = {"name": os.environ.get("PRIVSEP_PROCESS", "?")}
    try:
        plan = _read_plan(int(sys.argv[1]))
        _sandbox(plan)
    except BaseException as exc:
        _report(str(plan["name"]), exc)
        os._exit(EXIT_SETUP_FAILED)
    from privsep.component._runner import run

    run(plan)


_inherited: list[object] = []


def _forget_environment() -> None:
    """Empty the environment and overwrite what a fork copied of the parent's: the
    values of os.environ (bytes objects of the heap) and the strings the kernel put on
    the parent's initial stack (env_start..env_end in /proc/self/stat). An exec would
    have dropped both; left here, a compromised component could read the caller's
    secrets from its own memory."""
    import ctypes

    offset = bytes.__basicsize__ - 1  # PyBytesObject's data, after its header
    for value in getattr(os.environ, "_data", {}).values():
        if type(value) is bytes and len(value) > 1:  # 0- and 1-byte objects are shared
            ctypes.memset(id(value) + offset, 0, len(value))
    os.environ.clear()  # unsetenv: libc's environ no longer points into the block below
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rpartition(b")")[2].split()
    start, end = int(fields[47]), int(fields[48])  # proc(5) fields 50, 51: env_start/end
    if 0 < start < end:
        ctypes.memset(start, 0, end - start)


def _reset_inherited(name: str, env: dict[str, str], stdio: tuple[int, int, int]) -> None:
    # The parent's event loop set a wakeup fd: after the fds are remapped that number may
    # be a granted channel, and a signal would write a byte into it.
    signal.set_wakeup_fd(-1)
    for signum in range(1, signal.NSIG):
        try:
            if callable(signal.getsignal(signum)):
                signal.signal(signum, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            continue
    for target, fd in enumerate(stdio):
        if fd != target:
            os.dup2(fd, target, inheritable=True)
    # Fresh stdio objects on 0-2, as a new interpreter has: the parent's may write through
    # other fds (a test runner's capture files), which are about to be closed. The old
    # objects are kept referenced so that no finalizer ever closes an fd number here.
    _inherited.extend((sys.stdin, sys.stdout, sys.stderr))
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, errors="backslashreplace", closefd=False)  # noqa: SIM115
    os.chdir("/")
    _forget_environment()
    os.environ.update(env)
    if "privsep._log" in sys.modules:  # the parent's log handlers name the parent
        from privsep import _log

        _log.configure(name)


def run_forked(
    plan: dict[str, object],
    env: dict[str, str],
    stdio: tuple[int, int, int],
    close: int,
    sigmask: set[int | signal.Signals],
) -> None:
    """The child of `spawn(fork=True)`: sandbox, run the component, `_exit` (never returns).

    Exiting through `os._exit` matters: the parent's atexit handlers and
    finalizers must not run here.
    """
    name = str(plan["name"])
    code = 1
    try:
        try:
            os.close(close)  # the parent's end of the liveness pipe
            _reset_inherited(name, env, stdio)
            signal.pthread_sigmask(signal.SIG_SETMASK, sigmask)  # blocked by the parent
            _sandbox(plan)
        except BaseException as exc:
            _report(name, exc)
            code = EXIT_SETUP_FAILED
            return
        from privsep.component._runner import run

        try:
            run(plan)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        except BaseException:
            import traceback

            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:  # noqa: SIM105
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os._exit(code)
