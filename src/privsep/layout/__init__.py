"""Layouts: parse, validate and model the processes of a service.

`load_layout(path, overrides)` reads a layout file into a fully resolved
`Layout` (parameters substituted, defaults filled in, paths absolute, processes
in start order) or raises `LayoutError` with one `file:line: message` per
problem. The model classes are the contract with the supervisor and the
launcher; `process_to_json`/`process_from_json` carry a `Process` between them.
"""

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
from privsep.layout._params import parse_set
from privsep.layout._parse import load_layout

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
