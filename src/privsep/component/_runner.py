"""The runner: the last step of the exec helper (or forked child), in the sandbox, as pid 1.

Entry components: import the module, `prepare(ctx)`, locks, `entry(ctx)`.
For an `async def` entry the event loops come first (asyncio, and pycapnp's
KJ loop when the process has channels, through `privsep.rpc.run_async`), the
locks are put on inside them, then the entry is awaited. A process exits 0
when its entry returns, 1 (after a JSON log line) when it raises.

`script` (privsep probe): as for an entry component, the entry module is imported
and `prepare(ctx)` run; then the file runs as `__main__` after every lock. For
a `command:` process (no entry) the script runs in place of the command.
`argv` (privsep shell, `command:` processes): exec'ed after every lock.
"""

# ruff: noqa: PLC0415 - rarely needed modules load where needed: start-up time

from __future__ import annotations

import os
import sys

from privsep.component._context import Context
from privsep.sandbox import _lock

TYPE_CHECKING = False
if TYPE_CHECKING:  # not at run time: every exec'd component imports this module
    from privsep.layout._model import Layout

CO_COROUTINE = 0x80


def _import(spec: str) -> object:
    module_name, _, attribute = spec.partition(":")
    module = __import__(module_name, fromlist=["_"])
    target: object = module
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def _fail(name: str, event: str, exc: BaseException) -> None:
    from privsep import _log

    _log.configure(name)
    logger = _log.get_logger("privsep.component")
    logger.error(event, exc_info=exc, extra={"fields": {"error": str(exc)}})


def _lock_or_exit(name: str, lock: object) -> None:
    """Put the locks on; if they fail, log why and exit 125 (the sandbox was not built)."""
    assert callable(lock)
    try:
        lock()
    except BaseException as exc:
        _fail(name, "sandbox-lock-failed", exc)
        os._exit(125)


def preload(layout: Layout) -> list[tuple[str, str]]:
    """Import every entry process's code and parse its schemas, in the calling process.

    For a supervisor that starts its children by fork: they inherit all of it
    instead of importing it each. A module may define `preload(process_name)`
    to import what its `prepare` would (e.g. one module per process). Each
    process's `code` paths are searched first, as in its sandbox; a module
    already loaded from elsewhere (two processes with a same-named module in
    different code paths) is left alone: that process imports its own after
    the fork. Failures are not raised: the process meets them again when it
    starts, where they are handled as its own. Returns (process, problem) pairs.
    """
    from privsep.rpc import load_schema

    problems: list[tuple[str, str]] = []
    base = list(sys.path)
    try:
        for process in layout.processes:
            if process.entry is None:
                continue
            code = [os.path.abspath(p) for p in process.code_paths]  # noqa: PTH100 - as _plan
            sys.path[:] = [*code, *base]
            try:
                for spec in (process.entry, process.prepare):
                    if spec is None:
                        continue
                    name = spec.partition(":")[0]
                    loaded = sys.modules.get(name.partition(".")[0])
                    where = getattr(loaded, "__file__", None) or ""
                    if loaded is not None and code and not where.startswith(tuple(code)):
                        problems.append((process.name, f"{name}: another process's module"))
                        continue
                    module = __import__(name, fromlist=["_"])
                    hook = getattr(module, "preload", None)
                    if callable(hook):
                        hook(process.name)
                for channel in process.channels:
                    load_schema(channel.schema)
            except Exception as exc:  # the process meets it again at its own start
                problems.append((process.name, f"{type(exc).__name__}: {exc}"))
    finally:
        sys.path[:] = base
    return problems


def run(plan: dict[str, object]) -> None:
    name = str(plan["name"])
    spec = plan["run"]
    assert isinstance(spec, dict)

    def lock() -> None:
        _lock.apply(plan)

    sys.path[:] = list(spec["sys_path"])
    mode = spec["mode"]
    if mode == "argv":
        argv = list(spec["argv"])
        _lock_or_exit(name, lock)
        os.execve(argv[0], argv, os.environ)  # noqa: S606 - the layout's command, after the locks
    fds = {fd_name: 3 + i for i, fd_name in enumerate(spec["fd_names"])}
    ctx = Context(name, fds, spec["params"], spec["channels"])
    entry = _prepare(name, spec, ctx)
    if mode == "script":
        # The probe sees what the component would after its locks: the entry module
        # imported and `prepare` run, in the same process.
        _run_script(name, str(spec["script"]), spec["source"], lock)
        return
    code = getattr(entry, "__code__", None)
    try:
        if code is not None and code.co_flags & CO_COROUTINE:
            _run_async(entry, ctx, lock, spec["channels"])
        else:
            _lock_or_exit(name, lock)
            entry(ctx)  # type: ignore[operator]
    except SystemExit:
        raise
    except BaseException as exc:
        _fail(name, "component-failed", exc)
        sys.exit(1)
    sys.exit(0)


def _prepare(name: str, spec: dict[str, object], ctx: Context) -> object:
    """Import the entry and run `prepare(ctx)`, before the locks; the entry, or None for a
    probe of a `command:` process (which has neither)."""
    try:
        entry = _import(str(spec["entry"])) if spec["entry"] else None
        if spec["prepare"]:
            prepare = _import(str(spec["prepare"]))
            prepare(ctx)  # type: ignore[operator]
    except BaseException as exc:
        _fail(name, "component-prepare-failed", exc)
        sys.exit(1)
    return entry


def _run_async(entry: object, ctx: Context, lock: object, channels: object) -> None:
    assert callable(entry)
    assert callable(lock)
    assert isinstance(channels, dict)
    if channels:
        from privsep.rpc import run_async

        schemas = sorted({schema for schema, _, _ in channels.values()})
        run_async(entry, ctx, before=lock, schemas=schemas)
        return
    import asyncio

    async def body() -> None:
        lock()
        await entry(ctx)

    asyncio.run(body())


def _run_script(name: str, path: str, source: object, lock: object) -> None:
    assert isinstance(source, bytes)
    code = compile(source, path, "exec")
    main = sys.modules["__main__"]
    namespace = main.__dict__
    namespace.clear()
    namespace.update({"__name__": "__main__", "__file__": path, "__builtins__": __builtins__})
    sys.argv[:] = [path]
    _lock_or_exit(name, lock)
    exec(code, namespace)  # noqa: S102 - the probe script is the point
    sys.exit(0)
