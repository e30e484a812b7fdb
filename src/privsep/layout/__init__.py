"""Layouts: parse, validate and model the processes of a service.

`load_layout(path, overrides)` reads a layout file into a fully resolved
`Layout` (parameters substituted, defaults filled in, paths absolute, processes
in start order) or raises `LayoutError` with one `file:line: message` per
problem. The model classes are the contract with the supervisor and the
launcher; `process_to_json`/`process_from_json` carry a `Process` between them.

The parser (and PyYAML under it) loads on the first `load_layout`/`parse_set`
call, not with the model: a supervisor handed a parsed `Layout` never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from privsep._errors import LayoutError
from privsep.layout._model import (
    LANDLOCK_RIGHTS,
    Bind,
    Channel,
    ConnectFd,
    Fd,
    FileFd,
    LandlockRule,
    Layout,
    ListenFd,
    Namespaces,
    NetlinkFd,
    Network,
    PacketFd,
    Parameter,
    Process,
    Resource,
    Restart,
    Seccomp,
    User,
    process_from_json,
    process_to_json,
)


def load_layout(
    path: str | Path, overrides: Mapping[str, str] | None = None, *, check_schemas: bool = False
) -> Layout:
    """Parse and validate the layout at `path`, with `--set` `overrides` applied.

    `check_schemas`: also parse every channel's schema and look up its interface
    (as `privsep check` does; it costs pycapnp's import and a fork per schema).
    Raises LayoutError listing every problem as `file:line: message`.
    """
    from privsep.layout._parse import load_layout as load  # noqa: PLC0415

    return load(path, overrides, check_schemas=check_schemas)


def parse_set(items: list[str]) -> dict[str, str]:
    """`["k=v", ...]` from `--set` options as a dict; a malformed item raises LayoutError."""
    from privsep.layout._params import parse_set as parse  # noqa: PLC0415

    return parse(items)


__all__ = [
    "LANDLOCK_RIGHTS",
    "Bind",
    "Channel",
    "ConnectFd",
    "Fd",
    "FileFd",
    "LandlockRule",
    "Layout",
    "LayoutError",
    "ListenFd",
    "Namespaces",
    "NetlinkFd",
    "Network",
    "PacketFd",
    "Parameter",
    "Process",
    "Resource",
    "Restart",
    "Seccomp",
    "User",
    "load_layout",
    "parse_set",
    "process_from_json",
    "process_to_json",
]
