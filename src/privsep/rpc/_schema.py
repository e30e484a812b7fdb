"""Loading Cap'n Proto schemas from `.capnp` files, once per process."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import capnp

from privsep._errors import PrivsepError


class RpcError(PrivsepError):
    """A channel cannot be set up: unreadable schema, unknown interface, bad fd."""


_cache: dict[str, Any] = {}
_lock = threading.Lock()


def load_schema(path: str | Path) -> Any:
    """The module pycapnp builds from the schema file at `path`, cached by absolute path.

    Imports (`using import "x.capnp"`) resolve against the schema's own directory.
    Parsing costs milliseconds, so the cache matters for processes that open many
    channels on one schema; call it before the locks go on if the sandbox's
    Landlock rules may not cover the schema file later.
    """
    key = str(Path(path).absolute())
    with _lock:
        module = _cache.get(key)
        if module is None:
            try:
                module = capnp.load(key, imports=[str(Path(key).parent)])
            except (OSError, capnp.KjException) as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise RpcError(f"cannot load schema {key}: {first}") from exc
            _cache[key] = module
        return module


def interface(path: str | Path, name: str) -> Any:
    """The interface module `name` (dotted for nested ones) of the schema at `path`."""
    node: Any = load_schema(path)
    for part in name.split("."):
        node = getattr(node, part, None)
        if node is None:
            raise RpcError(f"schema {path} has no interface {name}")
    if not hasattr(node, "Server") or not hasattr(node, "schema"):
        raise RpcError(f"{name} in schema {path} is not an interface")
    return node
