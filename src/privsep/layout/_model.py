"""The typed model of a layout: what each process of a service may hold.

This is the contract between the parser (`privsep.layout`), the supervisor, which
opens resources and creates channels, and the launcher, which builds each sandbox.
Every field is resolved: parameters are substituted, defaults are filled in and
paths are absolute, so the supervisor and the launcher never look at YAML.

Default-deny: an omitted grant is the empty grant. A process with no `seccomp`
key gets the `default` base profile; with no `landlock` key it may read and
execute only its own code and the interpreter; with no `capabilities` it has
none; its network namespace is new and empty unless `net` says otherwise.

A resolved `Process` travels from the supervisor to the exec helper as JSON
(`process_to_json` / `process_from_json`), so every field is a plain value,
a tuple, or another dataclass of this module.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

NetMode = Literal["none", "host", "netns"]
RestartPolicy = Literal["never", "on-failure", "always"]
ChannelRole = Literal["serves", "uses"]
FileMode = Literal["r", "w", "rw", "a"]
Proto = Literal["tcp", "udp"]

# Landlock rights a layout may grant on a path, coarse on purpose; the launcher
# maps them to the kernel's access bits for the ABI it finds.
LANDLOCK_RIGHTS = ("read", "write", "execute", "create", "remove")


@dataclass(frozen=True, slots=True)
class Parameter:
    """A layout parameter: `${name}` in string values, overridable by `--set name=value`."""

    name: str
    default: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class User:
    """Who the process runs as. `dynamic` picks an unused unprivileged id at start."""

    uid: int | None = None
    gid: int | None = None
    dynamic: bool = True


@dataclass(frozen=True, slots=True)
class Network:
    """Which network namespace the process lives in.

    none: a new, empty one (the default); host: the supervisor's own;
    netns: the named one under /var/run/netns (`netns` holds the name).
    """

    mode: NetMode = "none"
    netns: str | None = None


@dataclass(frozen=True, slots=True)
class Namespaces:
    """Namespaces besides the always-new mount, pid, ipc, uts and cgroup ones."""

    net: Network = field(default_factory=Network)
    user: bool = False


@dataclass(frozen=True, slots=True)
class Bind:
    """A path of the host bound into the sandbox's root filesystem."""

    source: str
    target: str
    writable: bool = False


@dataclass(frozen=True, slots=True)
class LandlockRule:
    path: str
    access: tuple[str, ...]  # subset of LANDLOCK_RIGHTS


@dataclass(frozen=True, slots=True)
class Seccomp:
    """The syscall allow-list: a named base profile plus extras.

    Syscalls the policy does not know fail with ENOSYS (so libc falls back);
    syscalls listed in `deny` fail with EPERM.
    """

    profile: str = "default"
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PacketFd:
    """An AF_PACKET socket bound to `interface` in `netns`, with a named BPF filter, locked."""

    interface: str
    filter: str
    netns: str | None = None


@dataclass(frozen=True, slots=True)
class NetlinkFd:
    """A netlink socket (SOCK_DGRAM) of `protocol` opened in `netns`."""

    protocol: Literal["route"] = "route"
    netns: str | None = None


@dataclass(frozen=True, slots=True)
class ListenFd:
    proto: Proto
    address: str
    port: int
    netns: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectFd:
    proto: Proto
    address: str
    port: int
    netns: str | None = None


@dataclass(frozen=True, slots=True)
class FileFd:
    path: str
    mode: FileMode = "r"


Resource = PacketFd | NetlinkFd | ListenFd | ConnectFd | FileFd


@dataclass(frozen=True, slots=True)
class Fd:
    """A resource the supervisor opens and passes under `name` (LISTEN_FDNAMES)."""

    name: str
    resource: Resource


@dataclass(frozen=True, slots=True)
class Channel:
    """One end of a capnp RPC channel (one socketpair per channel name).

    The side with role `serves` exports `interface` of `schema` as its bootstrap
    capability; the `uses` side gets a client of exactly that interface.
    """

    name: str
    peer: str
    role: ChannelRole
    schema: str  # absolute path of the .capnp file
    interface: str


@dataclass(frozen=True, slots=True)
class Restart:
    policy: RestartPolicy = "on-failure"
    max_restarts: int = 5
    backoff_initial: float = 0.1
    backoff_max: float = 10.0


@dataclass(frozen=True, slots=True)
class Process:
    """One sandboxed process, fully resolved.

    Exactly one of `entry` (Python `module:function`, called as `await f(ctx)` or
    `f(ctx)`) and `command` (argv exec'ed after every lock is on) is set.
    `prepare` (`module:function`, called with ctx) runs before the locks.
    """

    name: str
    entry: str | None = None
    prepare: str | None = None
    command: tuple[str, ...] | None = None
    user: User = field(default_factory=User)
    capabilities: tuple[str, ...] = ()
    namespaces: Namespaces = field(default_factory=Namespaces)
    binds: tuple[Bind, ...] = ()
    landlock: tuple[LandlockRule, ...] = ()
    seccomp: Seccomp = field(default_factory=Seccomp)
    rlimits: tuple[tuple[str, int], ...] = ()
    memory: int | None = None  # bytes, where the cgroup controller allows
    pids: int | None = None
    fds: tuple[Fd, ...] = ()
    channels: tuple[Channel, ...] = ()
    restart: Restart = field(default_factory=Restart)
    required: bool = True  # the supervisor fails when this process gives up for good
    code_paths: tuple[str, ...] = ()  # extra read-only paths holding the component's code
    environment: tuple[tuple[str, str], ...] = ()
    degrade: tuple[str, ...] = ()  # named degradations the layout opts into


@dataclass(frozen=True, slots=True)
class Layout:
    service: str
    path: str  # absolute path of the layout file
    parameters: tuple[Parameter, ...]
    values: tuple[tuple[str, str], ...]  # the parameter values in effect
    processes: tuple[Process, ...]  # in start order: a channel's server before its users

    def process(self, name: str) -> Process:
        for process in self.processes:
            if process.name == name:
                return process
        raise KeyError(name)


# --- JSON round trip for the exec helper -------------------------------------------


def process_to_json(process: Process) -> str:
    return json.dumps(_encode(process), separators=(",", ":"))


def process_from_json(text: str) -> Process:
    process: Process = _decode(Process, json.loads(text))
    return process


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Resource):
            out["__kind__"] = type(value).__name__
        return out
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    return value


_RESOURCE_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in typing.get_args(Resource)}


def _decode(tp: Any, data: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            return None
        if isinstance(data, dict) and "__kind__" in data:
            return _decode(_RESOURCE_TYPES[data["__kind__"]], data)
        return _decode(args[0], data)
    if origin is tuple:
        items = typing.get_args(tp)
        if len(items) == 2 and items[1] is Ellipsis:
            return tuple(_decode(items[0], item) for item in data)
        return tuple(_decode(a, item) for a, item in zip(items, data, strict=True))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        kwargs = {
            f.name: _decode(hints[f.name], data[f.name])
            for f in dataclasses.fields(tp)
            if f.name in data
        }
        return tp(**kwargs)
    return data
