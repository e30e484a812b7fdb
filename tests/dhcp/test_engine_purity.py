"""The engine is pure: no clock, socket, file or randomness of its own.

Two independent checks: (1) parse the imports of the engine and of every
privsep module it imports, transitively, and (2) import it in a fresh
interpreter whose import hook refuses os/socket/time/random to any privsep
module, then look for those modules in the engine modules' namespaces.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import privsep

# What the brief forbids, and what would be a way around it (dynamic imports, FFI).
RUNTIME_BLOCKED = {"os", "socket", "time", "random"}
FORBIDDEN = RUNTIME_BLOCKED | {"subprocess", "importlib", "builtins", "ctypes", "select", "io"}
ROOT = Path(privsep.__file__).resolve().parent
ENTRY = "privsep.services.dhcp._engine"


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] != "privsep":
        return None
    base = ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names.add(target)
            # `from privsep.services.dhcp import _timing` imports a submodule.
            names.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Name) and node.id == "__import__":
            names.add("builtins")
    return names


def engine_closure() -> dict[str, set[str]]:
    """Every privsep module the engine imports (not package facades), with its imports."""
    seen: dict[str, set[str]] = {}
    todo = [ENTRY]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in seen or path is None or path.name == "__init__.py":
            continue
        seen[name] = _imports(path, name)
        todo.extend(seen[name])
    return seen


def test_engine_closure_covers_the_engine_modules() -> None:
    closure = engine_closure()
    for short in ("_engine", "_state", "_events", "_lease", "_config", "_timing", "_message"):
        assert f"privsep.services.dhcp.{short}" in closure
    assert "privsep._errors" in closure


def test_engine_modules_import_no_clock_socket_file_or_randomness() -> None:
    offenders = {
        module: sorted({i.split(".")[0] for i in imports} & FORBIDDEN)
        for module, imports in engine_closure().items()
    }
    assert {m: bad for m, bad in offenders.items() if bad} == {}


_PROBE = """
import builtins, sys, types
FORBIDDEN = {forbidden!r}
real_import = builtins.__import__

def guarded(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {{}}).get("__name__", "")
    if importer in {closure!r} and name.split(".")[0] in FORBIDDEN and level == 0:
        raise ImportError(f"{{importer}} imported {{name}}")
    return real_import(name, globals, locals, fromlist, level)

builtins.__import__ = guarded
import privsep.services.dhcp._engine as engine
for name in {closure!r}:
    module = sys.modules[name]
    for value in vars(module).values():
        if isinstance(value, types.ModuleType):
            assert value.__name__.split(".")[0] not in FORBIDDEN, (name, value.__name__)
client = engine.Client(
    __import__("privsep.services.dhcp._config", fromlist=["x"]).ClientConfig(mac=b"\\x02" * 6),
    rng=type("R", (), {{"uniform": lambda s, a, b: a, "getrandbits": lambda s, k: 1}})(),
)
client.start(0.0)
assert client.frames_to_send()
print("pure")
"""


def test_engine_runs_with_forbidden_modules_blocked() -> None:
    closure = sorted(engine_closure())
    code = _PROBE.format(forbidden=RUNTIME_BLOCKED, closure=closure)
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pure"


def test_the_probe_would_catch_an_offender(tmp_path: Path) -> None:
    # The import hook is only worth something if it fires: a module in the closure
    # that imports `time` must fail.
    code = _PROBE.format(forbidden=RUNTIME_BLOCKED, closure=["__main__"]).replace(
        "import privsep.services.dhcp._engine as engine", "import time"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "ImportError: __main__ imported time" in result.stderr
