"""From a resolved `Process` to the exec helper's plan: every decision made once, here.

The spawner (the supervisor's side) probes the kernel, checks degradations,
compiles the seccomp filter and lists the mounts, so the exec helper in the
child needs nothing but `marshal`, `os` and `ctypes` and makes only the
syscalls. The plan is a dict of plain values (marshal-able).
"""

# ruff: noqa: PLC0415, PTH100, PTH103, PTH110, PTH112, PTH114, PTH115, PTH116, PTH117, PTH118, PTH120 - paths here are plain strings for the marshalled plan and the kernel

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from privsep._errors import PrivsepError
from privsep.layout._model import Layout, Process
from privsep.sandbox import _cgroups, _landlock, _namespaces, _profiles, _seccomp
from privsep.sandbox._caps import CAPABILITIES, mask
from privsep.sandbox._rlimits import RLIMITS

RUN_DIR = "/run/privsep"
STAGING = f"{RUN_DIR}/root"  # the new root is built on a tmpfs mounted here (private mount ns)
USERS_DIR = f"{RUN_DIR}/users"  # one lock file per dynamic uid in use

# The /dev nodes every sandbox gets.
DEV_NODES = ("null", "zero", "urandom", "random")
# Shared libraries the interpreter links against (symlinks replicated, dirs bound read-only).
LIB_DIRS = ("/lib", "/lib64", "/lib32", "/libx32", "/usr/lib", "/usr/lib64", "/usr/lib32")
# For `privsep shell` and `command:` processes: where executables live.
BIN_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin")
TMP_OPTIONS = "mode=1777,size=16m,nr_inodes=4096"
# Kernel knobs under /proc a uid-0 process could write by plain file permissions
# (Landlock denies it too; this holds under `no-landlock` as well).
PROC_READONLY = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus")

READ = ("read",)
READ_EXEC = ("read", "execute")
# What the shell may additionally do (see docs/sandbox.md, "privsep shell").
SHELL_SYSCALLS = frozenset({"execve", "execveat", "setpgid", "getpgid", "vfork", "fork", "dup2"})


class SandboxError(PrivsepError):
    """The sandbox cannot be built as the layout asks (one-line message)."""


@functools.cache
def _syscall_numbers() -> dict[str, int]:
    numbers = {}
    for name in ("pivot_root", "mount_setattr", "seccomp"):
        number = _seccomp.syscall_number(name)
        if number is None:
            raise SandboxError(f"this architecture has no {name} syscall")
        numbers[name] = number
    return numbers


@functools.cache
def _run_dirs() -> None:
    for directory in (STAGING, USERS_DIR):
        os.makedirs(directory, mode=0o755, exist_ok=True)


def privsep_root() -> str:
    """The directory holding the `privsep` package (put first on the helper's sys.path)."""
    import privsep

    return os.path.dirname(os.path.dirname(os.path.abspath(privsep.__file__)))


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


class _Binds:
    """Binds keyed by target; a bind already covered by an identical parent bind is dropped."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[str, bool]] = {}

    def add(self, source: str, target: str | None = None, writable: bool = False) -> None:
        source = os.path.abspath(source)
        target = os.path.abspath(target or source)
        if not os.path.exists(source):
            return
        self.items[target] = (source, writable)

    def operations(self) -> list[tuple[Any, ...]]:
        ops: list[tuple[Any, ...]] = []
        kept: list[tuple[str, str, bool]] = []
        for target in sorted(self.items, key=lambda t: (t.count("/"), t)):
            source, writable = self.items[target]
            covered = any(
                _under(target, t) and source == s + target[len(t) :] and w == writable
                for t, s, w in kept
            )
            if not covered:
                kept.append((target, source, writable))
                ops.append(("bind", source, target, writable))
        return ops


def _lib_operations(binds: _Binds, dirs: Sequence[str]) -> list[tuple[Any, ...]]:
    """Symlinked top-level dirs (merged /usr) become symlinks; real ones, binds."""
    links: list[tuple[Any, ...]] = []
    for directory in dirs:
        if os.path.islink(directory):
            target = os.readlink(directory)
            if os.path.isabs(target):  # resolve inside the new root, not the host's
                target = os.path.relpath(target, os.path.dirname(directory))
            links.append(("symlink", target, directory))
        elif os.path.isdir(directory):
            binds.add(directory)
    return links


def _interpreter_paths() -> list[str]:
    paths = [sys.base_prefix, sys.prefix, sys.exec_prefix, privsep_root()]
    paths += [p for p in sys.path if p and os.path.isabs(p) and os.path.exists(p)]
    return list(dict.fromkeys(os.path.abspath(p) for p in paths))


def _executable_outside_bin_dirs(command: Sequence[str] | None) -> str | None:
    if not command:
        return None
    real = os.path.realpath(command[0])
    if any(_under(real, os.path.realpath(d)) for d in BIN_DIRS):
        return None
    return real


def _filesystem(
    process: Process, script: str | None, command: Sequence[str] | None
) -> tuple[_Binds, list[tuple[Any, ...]]]:
    binds = _Binds()
    for path in (*_interpreter_paths(), *process.code_paths):
        binds.add(path)
    links = _lib_operations(binds, LIB_DIRS)
    binds.add("/etc/ld.so.cache")
    for channel in process.channels:
        binds.add(channel.schema)
    for bind in process.binds:
        binds.add(bind.source, bind.target, bind.writable)
    if script is not None:
        binds.add(script)
    if command is not None:
        links += _lib_operations(binds, BIN_DIRS)
        executable = _executable_outside_bin_dirs(command)
        if executable is not None:
            binds.add(executable)
    # A bind onto a directory that is replicated as a symlink (`/bin` -> `usr/bin` on a
    # merged /usr) goes where the link points, as a mount onto the host's symlink would:
    # the link itself is already in the sandbox, and a mount point cannot replace it.
    for _, _, link in links:
        if link in binds.items:
            source, writable = binds.items.pop(link)
            binds.add(source, os.path.realpath(link), writable)
    return binds, links


def landlock_rules(
    process: Process, *, script: str | None = None, command: Sequence[str] | None = None
) -> list[tuple[str, tuple[str, ...], bool]]:
    """The Landlock rules of a process's sandbox: (path, rights, required), in order.

    Pure (no probes, nothing created): `privsep inspect` shows these; the
    launcher installs an equivalent set without the redundant ones (`_minimal`).
    Every bind is readable; writing needs an explicit `landlock:` rule, and so
    does the sandbox's own /tmp (a rule covers everything mounted below its
    path, so a default grant on /tmp would open binds under /tmp too).
    `required` rules fail the start when their path is missing in the sandbox.
    """
    if command is None and process.command is not None:
        command = process.command
    rules: list[tuple[str, tuple[str, ...], bool]] = []
    for path in (*_interpreter_paths(), *(os.path.abspath(p) for p in process.code_paths)):
        rules.append((path, READ_EXEC, False))
    rules += [(path, READ_EXEC, False) for path in LIB_DIRS]
    rules.append(("/etc/ld.so.cache", READ, False))
    rules += [(channel.schema, READ, False) for channel in process.channels]
    rules += [(bind.target, READ, False) for bind in process.binds]
    rules += [(rule.path, rule.access, True) for rule in process.landlock]
    if script is not None:
        rules.append((script, READ, False))
    if command is not None:
        rules += [(path, READ_EXEC, False) for path in BIN_DIRS]
        executable = _executable_outside_bin_dirs(command)
        if executable is not None:
            rules.append((executable, READ_EXEC, False))
    rules.append(("/proc", READ, False))
    rules += [(f"/dev/{node}", ("read", "write"), False) for node in DEV_NODES]
    return list(dict.fromkeys(rules))


def _minimal(
    rules: list[tuple[str, tuple[str, ...], bool]], targets: set[str]
) -> list[tuple[str, tuple[str, ...], bool]]:
    """Drop rules that cannot matter: duplicates, optional paths missing on the host
    (bind targets excepted: they exist only in the sandbox), and paths below another
    rule granting at least as much (a rule covers everything beneath its path)."""
    kept: dict[str, tuple[str, tuple[str, ...], bool]] = {}
    for given, rights, required in rules:
        path = given
        if not required and given not in targets:
            if not os.path.exists(given):
                continue
            if given in LIB_DIRS + BIN_DIRS:  # replicated symlinks: /lib -> /usr/lib
                path = os.path.realpath(given)
        if path in kept:
            _, old, was_required = kept[path]
            kept[path] = (path, tuple(dict.fromkeys((*old, *rights))), required or was_required)
        else:
            kept[path] = (path, rights, required)
    return [
        (path, rights, required)
        for path, rights, required in kept.values()
        if required
        or not any(
            _under(path, other) and other != path and set(rights) <= set(granted)
            for other, granted, _ in kept.values()
        )
    ]


_COMPILED: dict[str, int] = {}


def _pyc_is_fresh(source: str, cache: str, stat: os.stat_result) -> bool:
    """Whether `cache` is the bytecode the import system would accept for `source`."""
    import importlib.util

    try:
        with open(cache, "rb") as f:
            header = f.read(16)
    except OSError:
        return False
    return (
        len(header) == 16
        and header[:4] == importlib.util.MAGIC_NUMBER
        and int.from_bytes(header[4:8], "little") == 0  # timestamp-based
        and int.from_bytes(header[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
        and int.from_bytes(header[12:16], "little") == stat.st_size & 0xFFFFFFFF
    )


def _module_files(module: str, roots: Sequence[str]) -> list[str]:
    parts = module.split(".")
    files = []
    for root in roots:
        files += [os.path.join(root, *parts[:i], "__init__.py") for i in range(1, len(parts) + 1)]
        files.append(os.path.join(root, *parts) + ".py")
    return files


def _precompile(process: Process) -> None:
    """Write fresh bytecode for what the sandbox imports after its root went read-only.

    The sandbox cannot write `__pycache__`, so stale or missing bytecode means a
    compile on every start (milliseconds): the runner's modules and the files of
    the entry's and prepare's modules are compiled here, once per change, even
    under PYTHONDONTWRITEBYTECODE.
    """
    import importlib.util
    import py_compile

    here = os.path.dirname(os.path.abspath(__file__))
    component = os.path.join(os.path.dirname(here), "component")
    sources = [
        os.path.join(component, "__init__.py"),
        os.path.join(component, "_context.py"),
        os.path.join(component, "_runner.py"),
        os.path.join(here, "_lock.py"),
    ]
    for spec in (process.entry, process.prepare):
        if spec:
            sources += _module_files(spec.partition(":")[0], process.code_paths)
    for source in sources:
        try:
            stat = os.stat(source)
        except OSError:
            continue
        if _COMPILED.get(source) == stat.st_mtime_ns:
            continue
        cache = importlib.util.cache_from_source(source)
        if not _pyc_is_fresh(source, cache, stat):
            py_compile.compile(source, cfile=cache, doraise=False, quiet=2)
        _COMPILED[source] = stat.st_mtime_ns


_CACHE: dict[tuple[Any, ...], dict[str, Any]] = {}
_CACHE_SIZE = 64


def build(
    process: Process,
    fds: Mapping[str, int],
    *,
    layout: Layout,
    script: str | None = None,
    argv: Sequence[str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The plan for the exec helper and the environment to exec it with.

    The work that depends only on the process (mounts, rules, the compiled
    filter, ...) is cached: a restart costs a few stat calls here. What may
    change between starts is checked every time (network namespace, bind
    sources, the script's text, fresh bytecode).
    """
    key = (process, layout.values, script, None if argv is None else tuple(argv))
    static = _CACHE.get(key)
    if static is None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        static = _CACHE[key] = _build(process, layout=layout, script=script, argv=argv)
    else:
        _check_paths(process)
    _precompile(process)
    plan = dict(static)
    run = plan["run"] = dict(static["run"])
    if script is not None:
        with open(run["script"], "rb") as f:
            run["source"] = f.read()
    plan["fds"] = list(fds.values())
    run["fd_names"] = list(fds)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PRIVSEP_PROCESS": process.name}
    if fds:
        env["LISTEN_FDS"] = str(len(fds))
        env["LISTEN_FDNAMES"] = ":".join(fds)
    env.update(process.environment)
    return plan, env


def _check_paths(process: Process) -> None:
    net = process.namespaces.net
    if net.mode == "netns" and not os.path.exists(_namespaces.netns_path(net.netns or "")):
        raise SandboxError(f"process {process.name}: no network namespace {net.netns}")
    for bind in process.binds:
        if not os.path.exists(bind.source):
            raise SandboxError(f"process {process.name}: bind source {bind.source} does not exist")


def _build(
    process: Process,
    *,
    layout: Layout,
    script: str | None,
    argv: Sequence[str] | None,
) -> dict[str, Any]:
    degrade = frozenset(process.degrade)
    unknown = degrade - _profiles.DEGRADATIONS
    if unknown:
        raise SandboxError(f"unknown degradation {sorted(unknown)[0]!r}")
    shell = argv is not None
    command = list(argv) if argv is not None else list(process.command or ()) or None
    plan: dict[str, Any] = {"name": process.name, "nr": _syscall_numbers()}
    _run_dirs()

    # Namespaces.
    # The pid namespace comes from the spawner (the helper is born pid 1 in it); the
    # helper unshares the rest itself, the cgroup one after joining its cgroups.
    flags = _namespaces.ALWAYS & ~_namespaces.CLONE_NEWPID
    net = process.namespaces.net
    plan["netns"] = None
    if net.mode == "none":
        flags |= _namespaces.CLONE_NEWNET
    elif net.mode == "netns":
        plan["netns"] = _namespaces.netns_path(net.netns or "")
    plan["userns"] = False
    if process.namespaces.user:
        if _namespaces.user_namespaces_available():
            plan["userns"] = True
        elif "no-user-namespace" not in degrade:
            raise SandboxError(
                f"process {process.name}: this kernel does not allow user namespaces "
                "(opt into degradation no-user-namespace)"
            )
    plan["unshare"] = flags

    # Credentials.
    user = process.user
    if user.dynamic or user.uid is None:
        plan["user"] = None
    else:
        plan["user"] = (user.uid, user.gid if user.gid is not None else user.uid)
    unknown_caps = [c for c in process.capabilities if c not in CAPABILITIES]
    if unknown_caps:
        raise SandboxError(f"unknown capability {unknown_caps[0]}")
    plan["caps"] = mask(process.capabilities)

    # Limits.
    plan["rlimits"] = [(RLIMITS[name], value) for name, value in process.rlimits]
    limits: list[tuple[str, str, str]] = []
    for controller, value in (("memory", process.memory), ("pids", process.pids)):
        if value is None:
            continue
        where = _cgroups.locate(controller)
        if where is None:
            if "no-cgroup-limits" in degrade:
                continue
            raise SandboxError(
                f"process {process.name}: no writable cgroup {controller} controller for "
                f"{controller}: {value} (opt into degradation no-cgroup-limits)"
            )
        limits.append((where[0], where[1], str(value)))
    plan["cgroups"] = limits

    # Root filesystem and the Landlock rules that go with it.
    _check_paths(process)
    if script is not None:
        script = os.path.abspath(script)
    if command is not None:
        executable = shutil.which(command[0], path="/usr/local/bin:/usr/bin:/bin")
        if executable is None:
            raise SandboxError(f"process {process.name}: command {command[0]} not found")
        command[0] = executable
    binds, links = _filesystem(process, script, command)
    rules = landlock_rules(process, script=script, command=command)
    rules = _minimal(rules, {bind.target for bind in process.binds})  # fewer syscalls
    plan["staging"] = STAGING
    plan["mounts"] = [
        # Symlinks and the fresh mounts first: binds below them resolve through them
        # (a code path under /tmp lands on the sandbox's own /tmp, not under it).
        *links,
        ("proc", "/proc"),
        *(("readonly", path) for path in PROC_READONLY if process.user.uid == 0),
        ("dev", "/dev", list(DEV_NODES)),
        ("tmpfs", "/tmp", TMP_OPTIONS),  # noqa: S108 - the sandbox's own, empty tmpfs
        *binds.operations(),
    ]

    # Seccomp.
    allowed = _profiles.resolve_allowlist(process.seccomp)
    denied = _profiles.resolve_denylist(process.seccomp)
    if command is not None:
        allowed |= frozenset({"execve"})
        denied -= frozenset({"execve"})
    if shell:
        allowed |= SHELL_SYSCALLS
        denied -= SHELL_SYSCALLS
    if _seccomp.available():
        any_ioctl = "ioctl" in process.seccomp.allow or shell
        plan["seccomp"] = _seccomp.compile_filter(allowed, denied, any_ioctl=any_ioctl)
    elif "no-seccomp" in degrade:
        plan["seccomp"] = None
    else:
        raise SandboxError(
            f"process {process.name}: seccomp is unavailable (libseccomp2 or kernel); "
            "opt into degradation no-seccomp"
        )

    # Landlock.
    version = _landlock.abi()
    net_bits = _landlock.handled_net(version, allowed)
    if version == 0:
        if "no-landlock" not in degrade:
            raise SandboxError(
                f"process {process.name}: Landlock is unavailable on this kernel "
                "(opt into degradation no-landlock)"
            )
        plan["landlock"] = None
    else:
        if version < 4 and "landlock-abi-below-4" not in degrade:
            raise SandboxError(
                f"process {process.name}: Landlock ABI {version} cannot restrict TCP "
                "(need 4; opt into degradation landlock-abi-below-4)"
            )
        plan["landlock"] = {
            "fs": _landlock.handled_fs(version),
            "net": net_bits,
            "scoped": _landlock.scoped(version),
            "rules": [(p, _landlock.access_mask(a), req) for p, a, req in rules],
        }

    # What runs (fds and the script's text are filled in per start by `build`).
    code = [os.path.abspath(p) for p in process.code_paths]
    plan["run"] = {
        # A probe script runs in place of the command, in the command's own sandbox.
        "mode": "script" if script is not None else "argv" if command is not None else "entry",
        "entry": process.entry,
        "prepare": process.prepare,
        "script": script,
        "source": None,
        "argv": command,
        "sys_path": list(dict.fromkeys((*code, *_interpreter_paths()))),
        "params": dict(layout.values),
        "fd_names": [],
        "channels": {c.name: (c.schema, c.interface, c.role) for c in process.channels},
    }
    return plan
