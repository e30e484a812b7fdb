"""The launcher: start a process of a layout inside its sandbox.

`spawn(process, fds, layout=...)` starts the exec helper (`python -m
privsep.sandbox`), which builds the sandbox in the order documented in
docs/sandbox.md and then runs the component. This facade stays light (the
exec helper imports it too): `spawn` and `Sandboxed` load on first use.
"""

# ruff: noqa: PLC0415 - the facade loads `spawn` lazily: the exec helper imports it

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs ~10 ms of every sandboxed start
if TYPE_CHECKING:
    from typing import Any

    from privsep.sandbox._spawn import Sandboxed, SandboxError, spawn

__all__ = ["SandboxError", "Sandboxed", "spawn"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from privsep.sandbox import _spawn

        return getattr(_spawn, name)
    raise AttributeError(name)
