"""From a layout file to the typed model: read every key of every process.

Theory of operation: `load_layout` composes the YAML into nodes (keeping line
numbers), reads the parameters first so `${name}` can be substituted while the
processes are read, reads each process into a `Process` (a bad value records a
problem and falls back to the default, so reading goes on), then checks what
spans processes (`_graph`) and raises one `LayoutError` with every problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar, cast, get_args

import yaml

from privsep._errors import LayoutError
from privsep.layout import _graph, _names, _yaml
from privsep.layout._model import (
    LANDLOCK_RIGHTS,
    Bind,
    Channel,
    ChannelRole,
    ConnectFd,
    Fd,
    FileFd,
    FileMode,
    LandlockRule,
    Layout,
    ListenFd,
    Namespaces,
    NetlinkFd,
    NetMode,
    Network,
    PacketFd,
    Process,
    Proto,
    Resource,
    Restart,
    RestartPolicy,
    Seccomp,
    User,
)
from privsep.layout._params import Substituter, parse_parameters, resolve_values

T = TypeVar("T")

_TOP_KEYS = ("service", "parameters", "processes")
_REQUIRED = ("service", "processes")
_PROCESS_KEYS = (
    "entry",
    "prepare",
    "command",
    "code",
    "user",
    "capabilities",
    "namespaces",
    "binds",
    "landlock",
    "seccomp",
    "rlimits",
    "memory",
    "pids",
    "fds",
    "channels",
    "restart",
    "required",
    "environment",
    "degrade",
)
_FD_KINDS = ("packet", "netlink", "listen", "connect", "file")

_SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
_HANDLE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")  # fd and channel names (LISTEN_FDNAMES)
_CALLABLE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*\Z")
_INTERFACE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z")
_NETNS_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_OWN_MOUNTS = ("/dev", "/proc")  # mounted by the sandbox itself: no bind target there
_IFNAME = re.compile(r"[^/\s:]{1,15}\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SIZE = re.compile(r"([0-9]+)\s*([kmgt]?)(?:i?b)?\Z", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}

# setrlimit resources by layout name; True where the value is a size in bytes.
RLIMITS = {
    "as": True,
    "core": True,
    "cpu": False,
    "data": True,
    "fsize": True,
    "locks": False,
    "memlock": True,
    "msgqueue": True,
    "nice": False,
    "nofile": False,
    "nproc": False,
    "rss": True,
    "rtprio": False,
    "rttime": False,
    "sigpending": False,
    "stack": True,
}
_NO_NAMES: tuple[str, ...] = ()
_NO_FDS: tuple[Fd, ...] = ()
_NO_RULES: tuple[LandlockRule, ...] = ()
RLIM_INFINITY = -1  # resource.RLIM_INFINITY on Linux
_UNLIMITED = ("unlimited", "infinity")
_RESERVED_ENV = ("LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID")
_MAX_ID = 2**32 - 2  # (uid_t)-1 means "no change" to setresuid
_MAX_LIMIT = 2**63 - 1
_MAX_PIDS = 4194304  # the kernel's PID_MAX_LIMIT


def load_layout(
    path: str | Path, overrides: Mapping[str, str] | None = None, *, check_schemas: bool = False
) -> Layout:
    """Parse and validate the layout at `path`, with `--set` `overrides` applied.

    `check_schemas`: also load each channel's schema (in a forked child, see
    `privsep.rpc._check`) and look its interface up; for `privsep check`/`inspect`,
    not for the start path, where that would cost pycapnp's import.
    Raises LayoutError listing every problem as `file:line: message`.
    """
    path = Path(path)
    problems = _yaml.Problems(str(path))
    text = _yaml.read_text(path, problems)
    root = _yaml.compose(text, problems) if text is not None else None
    if not isinstance(root, yaml.MappingNode):
        if root is not None:
            problems.add(root, f"top level must be a mapping, not {_yaml.describe(root)}")
        raise LayoutError(problems.lines())
    # Top-level keys starting with `x-` are ignored: a place for YAML anchors (`<<: *common`).
    top = _yaml.mapping(
        root, problems, "layout", allowed=_TOP_KEYS, required=_REQUIRED, extensions="x-"
    )
    assert top is not None  # root is a mapping

    parameters = []
    params_node = top.get("parameters")
    if params_node is not None:
        parameters = parse_parameters(params_node, problems)
    params_key = top.key_node("parameters")
    values = resolve_values(
        parameters, overrides or {}, problems, params_key.start_mark.line + 1 if params_key else 1
    )
    reader = _Reader(problems, Substituter(values, problems), path.resolve().parent)

    service = ""
    service_node = top.get("service")
    if service_node is not None:
        service = reader.name(service_node, "service", _SERVICE_NAME, "[a-z0-9-]+") or ""

    processes: list[Process] = []
    nodes: dict[str, _graph.ProcessNodes] = {}
    procs_node = top.get("processes")
    procs = _yaml.mapping(procs_node, problems, "processes") if procs_node is not None else None
    if procs is not None:
        if not list(procs):
            problems.add(procs.node, "processes: at least one process is needed")
        for key, value in procs:
            if not _SERVICE_NAME.match(key.value):
                problems.add(key, f"process name '{key.value}' must match [a-z0-9-]+")
                continue
            process, process_nodes = reader.process(key, value)
            processes.append(process)
            nodes[process.name] = process_nodes

    ordered = _graph.check_and_order(processes, nodes, problems)
    if check_schemas and reader.schema_refs:
        from privsep.rpc._check import schema_problems  # noqa: PLC0415

        found = schema_problems((schema, name) for _, _, schema, name in reader.schema_refs)
        for node, what, schema, name in reader.schema_refs:
            problem = found.get((schema, name))
            if problem is not None:
                problems.add(node, f"{what}: {problem}")
    problems.raise_if_any()
    return Layout(
        service=service,
        path=str(path.resolve()),
        parameters=tuple(parameters),
        values=tuple(values.items()),
        processes=tuple(ordered),
    )


class _Reader:
    """Reads one process's keys; every accessor records a problem and returns None if bad."""

    def __init__(self, problems: _yaml.Problems, sub: Substituter, base: Path) -> None:
        self.problems = problems
        self.sub = sub
        self.base = base
        self.what = ""  # "process 'x'" prefix of messages
        # (node, "process 'x': channel 'y'", schema path, interface) of every channel
        self.schema_refs: list[tuple[yaml.Node, str, str, str]] = []

    # --- scalars -----------------------------------------------------------------

    def add(self, node: yaml.Node, message: str) -> None:
        self.problems.add(node, f"{self.what}: {message}" if self.what else message)

    def string(self, node: yaml.Node, key: str, *, empty: bool = False) -> str | None:
        """A string value (numbers too, as their text) with parameters substituted."""
        if isinstance(node, yaml.ScalarNode) and node.tag in (
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
        ):
            return str(node.value)
        if not _yaml.is_str(node):
            self.add(node, f"'{key}' must be a string, not {_yaml.describe(node)}")
            return None
        text = self.sub(str(node.value), node)
        if text is not None and not text and not empty:
            self.add(node, f"'{key}' must not be empty")
            return None
        if text is not None and "\0" in text:
            self.add(node, f"'{key}' must not contain a NUL character")
            return None
        return text

    def text(self, node: yaml.Node, key: str) -> str | None:
        """Any scalar as written (argv, environment: `yes` stays "yes", not a boolean)."""
        if _yaml.is_tag(node, "bool"):
            return str(node.value)
        return self.string(node, key, empty=True)

    def name(self, node: yaml.Node, key: str, pattern: re.Pattern[str], rule: str) -> str | None:
        text = self.string(node, key)
        if text is not None and not pattern.match(text):
            self.add(node, f"bad {key} {text!r}: must match {rule}")
            return None
        return text

    def choice(self, node: yaml.Node, key: str, choices: tuple[str, ...]) -> str | None:
        text = self.string(node, key)
        if text is not None and text not in choices:
            expected = ", ".join(choices)
            self.add(node, f"bad {key} {text!r}: expected one of {expected}")
            return None
        return text

    def integer(self, node: yaml.Node, key: str, low: int, high: int | None = None) -> int | None:
        value: object
        if _yaml.is_tag(node, "int"):
            value = _yaml.typed_scalar(node)
        elif _yaml.is_str(node):
            text = self.sub(str(node.value), node)
            if text is None:
                return None
            # ASCII digits only: int() would also take " 5 ", "5_0" and Arabic-Indic digits.
            if not re.fullmatch(r"-?[0-9]+", text, re.ASCII):
                self.add(node, f"bad {key} {text!r}: expected an integer")
                return None
            value = int(text)
        else:
            self.add(node, f"bad {key}: expected an integer, not {_yaml.describe(node)}")
            return None
        assert isinstance(value, int)
        if value < low:
            self.add(node, f"bad {key} {value}: must be >= {low}")
            return None
        if high is not None and value > high:
            self.add(node, f"bad {key} {value}: must be <= {high}")
            return None
        return value

    def number(self, node: yaml.Node, key: str, low: float) -> float | None:
        if not _yaml.is_tag(node, "int", "float", "str"):
            self.add(node, f"bad {key}: expected a number, not {_yaml.describe(node)}")
            return None
        if _yaml.is_str(node):
            text = self.sub(str(node.value), node)
            if text is None:
                return None
            try:
                value = float(text)
            except ValueError:
                self.add(node, f"bad {key} {text!r}: expected a number")
                return None
        else:
            text = str(node.value)
            value = float(cast(float, _yaml.typed_scalar(node)))
        if not value >= low or value == float("inf"):
            self.add(node, f"bad {key} {text}: must be a finite number >= {low:g}")
            return None
        return value

    def boolean(self, node: yaml.Node, key: str) -> bool | None:
        if not _yaml.is_tag(node, "bool"):
            if isinstance(node, yaml.ScalarNode):
                self.add(node, f"bad {key} {node.value!r}: expected true or false")
            else:
                self.add(node, f"bad {key}: expected true or false, not {_yaml.describe(node)}")
            return None
        return bool(_yaml.typed_scalar(node))

    def size(self, node: yaml.Node, key: str) -> int | None:
        """Bytes from `4096`, `64K`, `512M`, `1G`, `2GiB` (binary units)."""
        if _yaml.is_tag(node, "int"):
            return self.integer(node, key, 1, _MAX_LIMIT)
        text = self.string(node, key)
        if text is None:
            return None
        match = _SIZE.match(text.strip())
        if match is None or int(match.group(1)) == 0:
            self.add(node, f"bad {key} {text!r}: expected a size like 4096, 64K, 512M or 1G")
            return None
        size = int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
        if size > _MAX_LIMIT:
            self.add(node, f"bad {key} {text!r}: too large")
            return None
        return size

    def abspath(self, node: yaml.Node, key: str) -> str | None:
        text = self.string(node, key)
        if text is None:
            return None
        if not text.startswith("/"):
            self.add(node, f"{key} {text!r} must be an absolute path")
            return None
        return os.path.normpath(text)

    def relpath(self, node: yaml.Node, key: str) -> str | None:
        """A path, relative ones taken from the layout's directory."""
        text = self.string(node, key)
        if text is None:
            return None
        return os.path.normpath(self.base / text)

    def mapping(
        self,
        node: yaml.Node,
        key: str,
        allowed: tuple[str, ...] | None,
        required: tuple[str, ...] = (),
    ) -> _yaml.Mapping | None:
        what = f"{self.what}: {key}" if self.what and key else self.what or key
        return _yaml.mapping(node, self.problems, what, allowed=allowed, required=required)

    def items(self, node: yaml.Node, key: str) -> list[yaml.Node]:
        what = f"{self.what}: {key}" if self.what else key
        return _yaml.sequence(node, self.problems, what) or []

    def field(
        self,
        spec: _yaml.Mapping,
        key: str,
        read: Callable[[yaml.Node], T | None],
        default: T,
    ) -> T:
        node = spec.get(key)
        if node is None:
            return default
        value = read(node)
        return default if value is None else value

    # --- a process ---------------------------------------------------------------

    def process(self, key: yaml.ScalarNode, node: yaml.Node) -> tuple[Process, _graph.ProcessNodes]:
        name = key.value
        self.what = f"process '{name}'"
        nodes = _graph.ProcessNodes(key=key)
        spec = self.mapping(node, "", _PROCESS_KEYS)
        if spec is None:
            self.what = ""
            return Process(name=name, code_paths=(str(self.base),)), nodes
        entry = self.field(spec, "entry", lambda n: self.callable(n, "entry"), None)
        prepare = self.field(spec, "prepare", lambda n: self.callable(n, "prepare"), None)
        command = self.field(spec, "command", self.command, None)
        if "entry" in spec and "command" in spec:
            self.add(cast(yaml.Node, spec.key_node("command")), "has both 'entry' and 'command'")
        elif "entry" not in spec and "command" not in spec:
            self.problems.add(key, f"{self.what}: needs 'entry' (module:function) or 'command'")
        if "prepare" in spec and "command" in spec:
            self.add(
                cast(yaml.Node, spec.key_node("prepare")),
                "'prepare' needs 'entry'; a 'command' process has no prepare hook",
            )
        channels, nodes.channels = self.channels(spec.get("channels"), name)
        fds = self.field(spec, "fds", self.fds, _NO_FDS)
        self.check_handle_clash(fds, spec.get("fds"), nodes)
        seccomp = self.field(spec, "seccomp", self.seccomp, Seccomp())
        degrade = self.field(spec, "degrade", self.degrade, _NO_NAMES)
        landlock = self.field(spec, "landlock", self.landlock, _NO_RULES)
        if landlock and "no-landlock" in degrade:
            self.add(
                cast(yaml.Node, spec.key_node("landlock")),
                "has landlock rules but degrades 'no-landlock'",
            )
        process = Process(
            name=name,
            entry=entry,
            prepare=prepare,
            command=command,
            user=self.field(spec, "user", self.user, User()),
            capabilities=self.field(spec, "capabilities", self.capabilities, ()),
            namespaces=self.field(spec, "namespaces", self.namespaces, Namespaces()),
            binds=self.field(spec, "binds", self.binds, ()),
            landlock=landlock,
            seccomp=seccomp,
            rlimits=self.field(spec, "rlimits", self.rlimits, ()),
            memory=self.field(spec, "memory", lambda n: self.size(n, "memory"), None),
            pids=self.field(spec, "pids", lambda n: self.integer(n, "pids", 1, _MAX_PIDS), None),
            fds=fds,
            channels=channels,
            restart=self.field(spec, "restart", self.restart, Restart()),
            required=self.field(spec, "required", lambda n: self.boolean(n, "required"), True),
            code_paths=self.field(spec, "code", self.code, (str(self.base),)),
            environment=self.field(spec, "environment", self.environment, ()),
            degrade=degrade,
        )
        self.what = ""
        return process, nodes

    def callable(self, node: yaml.Node, key: str) -> str | None:
        text = self.string(node, key)
        if text is not None and not _CALLABLE.match(text):
            self.add(node, f"bad {key} {text!r}: expected module:function")
            return None
        return text

    def command(self, node: yaml.Node) -> tuple[str, ...] | None:
        items = self.items(node, "command")
        if not items:
            if isinstance(node, yaml.SequenceNode):
                self.add(node, "'command' must not be empty")
            return None
        argv = [self.text(item, "command argument") for item in items]
        if any(arg is None for arg in argv):
            return None
        program = cast(str, argv[0])
        if "/" in program and not program.startswith("/"):
            # Bare names are looked up in /usr/local/bin:/usr/bin:/bin by the launcher.
            self.add(items[0], f"command {program!r} must be an absolute path or a bare name")
            return None
        return tuple(cast(list[str], argv))

    def code(self, node: yaml.Node) -> tuple[str, ...] | None:
        items = [node] if _yaml.is_str(node) else self.items(node, "code")
        paths = []
        for item in items:
            path = self.relpath(item, "code path")
            if path is None:
                continue
            if not Path(path).is_dir():
                self.add(item, f"code path {path!r} is not a directory")
                continue
            paths.append(path)
        return tuple(dict.fromkeys(paths)) or None

    def user(self, node: yaml.Node) -> User | None:
        if _yaml.is_str(node):
            if node.value != "dynamic":
                self.add(node, f"bad user {node.value!r}: expected dynamic or {{uid: N, gid: N}}")
                return None
            return User()
        spec = self.mapping(node, "user", ("uid", "gid"), ("uid", "gid"))
        if spec is None or "uid" not in spec or "gid" not in spec:
            return None
        uid = self.integer(cast(yaml.Node, spec.get("uid")), "uid", 0, _MAX_ID)
        gid = self.integer(cast(yaml.Node, spec.get("gid")), "gid", 0, _MAX_ID)
        if uid is None or gid is None:
            return None
        return User(uid=uid, gid=gid, dynamic=False)

    def capabilities(self, node: yaml.Node) -> tuple[str, ...] | None:
        known = _names.capabilities()
        caps = []
        for item in self.items(node, "capabilities"):
            cap = self.string(item, "capability")
            if cap is None:
                continue
            if cap not in known:
                self.add(item, f"unknown capability '{cap}'{_yaml.suggest(cap, known)}")
                continue
            caps.append(cap)
        return tuple(dict.fromkeys(caps))

    def namespaces(self, node: yaml.Node) -> Namespaces | None:
        spec = self.mapping(node, "namespaces", ("net", "user"))
        if spec is None:
            return None
        return Namespaces(
            net=self.field(spec, "net", self.network, Network()),
            user=self.field(spec, "user", lambda n: self.boolean(n, "namespaces.user"), False),
        )

    def network(self, node: yaml.Node) -> Network | None:
        text = self.string(node, "net")
        if text is None:
            return None
        if text in ("none", "host"):
            return Network(mode=cast(NetMode, text))
        if text.startswith("netns:"):
            netns = text.removeprefix("netns:")
            if not netns:  # `netns:${netns}` with an empty parameter: the current namespace
                return Network(mode="host")
            if self.netns_name(node, netns):
                return Network(mode="netns", netns=netns)
            return None
        self.add(node, f"bad net {text!r}: expected none, host or netns:NAME")
        return None

    def netns_name(self, node: yaml.Node, name: str) -> bool:
        if not _NETNS_NAME.match(name):
            self.add(node, f"bad network namespace name {name!r}")
            return False
        return True

    def bind_target(self, node: yaml.Node, key: str) -> str | None:
        """An absolute path outside /dev and /proc: the sandbox mounts its own there, and
        its standing rules for them (read+write on /dev/null and friends, read on /proc)
        would apply to whatever a bind put in their place."""
        path = self.abspath(node, key)
        if path is not None and any(path == d or path.startswith(d + "/") for d in _OWN_MOUNTS):
            self.add(node, f"{key} {path!r}: /dev and /proc are the sandbox's own")
            return None
        return path

    def binds(self, node: yaml.Node) -> tuple[Bind, ...] | None:
        binds = []
        for item in self.items(node, "binds"):
            if _yaml.is_str(item):
                path = self.bind_target(item, "bind path")
                if path is not None:
                    binds.append(Bind(source=path, target=path))
                continue
            spec = self.mapping(item, "bind", ("path", "mode", "target"), ("path",))
            if spec is None or "path" not in spec:
                continue
            path = self.abspath(cast(yaml.Node, spec.get("path")), "bind path")
            target = self.field(spec, "target", lambda n: self.bind_target(n, "bind target"), None)
            if "target" not in spec and path is not None:
                target = self.bind_target(cast(yaml.Node, spec.get("path")), "bind path")
            mode = self.field(
                spec, "mode", lambda n: self.choice(n, "bind mode", ("ro", "rw")), "ro"
            )
            if path is not None and target is not None:
                binds.append(Bind(source=path, target=target, writable=mode == "rw"))
        return tuple(binds)

    def landlock(self, node: yaml.Node) -> tuple[LandlockRule, ...] | None:
        rules = []
        for item in self.items(node, "landlock"):
            spec = self.mapping(item, "landlock rule", ("path", "access"), ("path", "access"))
            if spec is None or "path" not in spec or "access" not in spec:
                continue
            path = self.abspath(cast(yaml.Node, spec.get("path")), "landlock path")
            access_node = cast(yaml.Node, spec.get("access"))
            rights = []
            for right_node in self.items(access_node, "landlock access"):
                right = self.string(right_node, "landlock right")
                if right is not None and right not in LANDLOCK_RIGHTS:
                    allowed = ", ".join(LANDLOCK_RIGHTS)
                    self.add(right_node, f"bad landlock right {right!r}: expected one of {allowed}")
                elif right is not None:
                    rights.append(right)
            if isinstance(access_node, yaml.SequenceNode) and not access_node.value:
                self.add(access_node, "landlock access must not be empty")
            if path is not None and rights:
                rules.append(LandlockRule(path=path, access=tuple(dict.fromkeys(rights))))
        return tuple(rules)

    def seccomp(self, node: yaml.Node) -> Seccomp | None:
        spec = self.mapping(node, "seccomp", ("profile", "allow", "deny"))
        if spec is None:
            return None
        profile = self.field(spec, "profile", self.profile, "default")
        allow = self.field(spec, "allow", lambda n: self.syscalls(n, "allow"), _NO_NAMES)
        deny = self.field(spec, "deny", lambda n: self.syscalls(n, "deny"), _NO_NAMES)
        for name in sorted(set(allow) & set(deny)):
            self.add(
                cast(yaml.Node, spec.key_node("deny")), f"syscall '{name}' both allowed and denied"
            )
        return Seccomp(profile=profile, allow=allow, deny=deny)

    def profile(self, node: yaml.Node) -> str | None:
        text = self.string(node, "seccomp profile")
        known = _names.profiles()
        if text is not None and text not in known:
            hint = _yaml.suggest(text, known)
            self.add(node, f"unknown seccomp profile {text!r}{hint}")
            return None
        return text

    def syscalls(self, node: yaml.Node, key: str) -> tuple[str, ...]:
        names = []
        for item in self.items(node, f"seccomp {key}"):
            name = self.string(item, "syscall")
            if name is None:
                continue
            if not _names.syscall_known(name):
                self.add(item, f"unknown syscall '{name}' in seccomp {key}")
                continue
            names.append(name)
        return tuple(dict.fromkeys(names))

    def rlimits(self, node: yaml.Node) -> tuple[tuple[str, int], ...] | None:
        spec = self.mapping(node, "rlimits", tuple(RLIMITS))
        if spec is None:
            return None
        limits = []
        for key, value in spec:
            limit: int | None
            if _yaml.is_str(value) and str(value.value).lower() in _UNLIMITED:
                limit = RLIM_INFINITY
            elif RLIMITS[key.value] and not _yaml.is_tag(value, "int"):
                limit = self.size(value, f"rlimit {key.value}")
            else:
                limit = self.integer(value, f"rlimit {key.value}", 0, _MAX_LIMIT)
            if limit is not None:
                limits.append((key.value, limit))
        return tuple(limits)

    def fds(self, node: yaml.Node) -> tuple[Fd, ...] | None:
        spec = self.mapping(node, "fds", None)  # keys are names, checked below
        if spec is None:
            return None
        fds = []
        for key, value in spec:
            name = key.value
            if not _HANDLE_NAME.match(name):
                self.add(key, f"bad fd name '{name}': must match [a-z0-9][a-z0-9_-]*")
                continue
            resource = self.resource(name, value)
            if resource is not None:
                fds.append(Fd(name=name, resource=resource))
        return tuple(fds)

    def resource(self, name: str, node: yaml.Node) -> Resource | None:
        kinds = ", ".join(_FD_KINDS)
        spec = self.mapping(node, f"fd '{name}'", None)
        if spec is None:
            return None
        present = []
        for key, _ in spec:
            if key.value in _FD_KINDS:
                present.append(key)
            else:
                hint = _yaml.suggest(key.value, _FD_KINDS)
                self.add(key, f"fd '{name}': unknown kind '{key.value}'{hint}: expected {kinds}")
        if len(present) > 1:
            listed = " and ".join(f"'{k.value}'" for k in present)
            self.add(present[1], f"fd '{name}' has two kinds, {listed}; give exactly one")
            return None
        if not present:
            if not list(spec):
                self.add(node, f"fd '{name}' needs one of {kinds}")
            return None
        kind = present[0].value
        body = cast(yaml.Node, spec.get(kind))
        what = f"fd '{name}' {kind}"
        if kind == "packet":
            return self.packet(body, what)
        if kind == "netlink":
            return self.netlink(body, what)
        if kind == "file":
            return self.file(body, what)
        return self.inet(body, what, kind)

    def fd_netns(self, spec: _yaml.Mapping) -> str | None:
        node = spec.get("netns")
        if node is None:
            return None
        text = self.string(node, "netns", empty=True)
        if not text or not self.netns_name(node, text):
            return None
        return text

    def packet(self, node: yaml.Node, what: str) -> PacketFd | None:
        spec = self.mapping(node, what, ("interface", "filter", "netns"), ("interface", "filter"))
        if spec is None or "interface" not in spec or "filter" not in spec:
            return None
        iface = self.name(
            cast(yaml.Node, spec.get("interface")), "interface", _IFNAME, "an interface name"
        )
        filter_node = cast(yaml.Node, spec.get("filter"))
        filter_name = self.string(filter_node, "filter")
        if filter_name is not None and filter_name not in _names.PACKET_FILTERS:
            known = ", ".join(_names.PACKET_FILTERS)
            self.add(filter_node, f"unknown packet filter {filter_name!r}: known filters: {known}")
            filter_name = None
        netns = self.fd_netns(spec)
        if iface is None or filter_name is None:
            return None
        return PacketFd(interface=iface, filter=filter_name, netns=netns)

    def netlink(self, node: yaml.Node, what: str) -> NetlinkFd | None:
        if _yaml.is_str(node):
            return NetlinkFd() if self.choice(node, "netlink protocol", ("route",)) else None
        spec = self.mapping(node, what, ("protocol", "netns"))
        if spec is None:
            return None
        protocol = spec.get("protocol")
        if protocol is not None and self.choice(protocol, "netlink protocol", ("route",)) is None:
            return None
        return NetlinkFd(netns=self.fd_netns(spec))

    def inet(self, node: yaml.Node, what: str, kind: str) -> ListenFd | ConnectFd | None:
        spec = self.mapping(node, what, ("proto", "address", "port", "netns"), ("address", "port"))
        if spec is None or "address" not in spec or "port" not in spec:
            return None
        proto = self.field(spec, "proto", lambda n: self.choice(n, "proto", get_args(Proto)), "tcp")
        address_node = cast(yaml.Node, spec.get("address"))
        address = self.string(address_node, "address")
        if address is not None:
            import ipaddress  # noqa: PLC0415 - keep `privsep check` fast

            try:
                address = str(ipaddress.ip_address(address))
            except ValueError:
                self.add(address_node, f"bad address {address!r}: expected an IP address")
                address = None
        port = self.integer(
            cast(yaml.Node, spec.get("port")), "port", int(kind == "connect"), 65535
        )
        netns = self.fd_netns(spec)
        if address is None or port is None:
            return None
        p = cast(Proto, proto)
        if kind == "listen":
            return ListenFd(proto=p, address=address, port=port, netns=netns)
        return ConnectFd(proto=p, address=address, port=port, netns=netns)

    def file(self, node: yaml.Node, what: str) -> FileFd | None:
        spec = self.mapping(node, what, ("path", "mode"), ("path",))
        if spec is None or "path" not in spec:
            return None
        path = self.relpath(cast(yaml.Node, spec.get("path")), "file path")
        modes = get_args(FileMode)
        mode = self.field(spec, "mode", lambda n: self.choice(n, "file mode", modes), "r")
        return None if path is None else FileFd(path=path, mode=cast(FileMode, mode))

    def channels(
        self, node: yaml.Node | None, owner: str
    ) -> tuple[tuple[Channel, ...], dict[str, yaml.Node]]:
        if node is None:
            return (), {}
        spec = self.mapping(node, "channels", None)
        if spec is None:
            return (), {}
        channels = []
        declared: dict[str, yaml.Node] = {}
        for key, value in spec:
            name = key.value
            if not _HANDLE_NAME.match(name):
                self.add(key, f"bad channel name '{name}': must match [a-z0-9][a-z0-9_-]*")
                continue
            declared[name] = key
            channel = self.channel(name, value, owner)
            if channel is not None:
                channels.append(channel)
        return tuple(channels), declared

    def channel(self, name: str, node: yaml.Node, owner: str) -> Channel | None:
        what = f"channel '{name}'"
        spec = self.mapping(node, what, ("peer", "serves", "uses"), ("peer",))
        if spec is None:
            return None
        roles = [r for r in ("serves", "uses") if r in spec]
        if len(roles) != 1:
            where = spec.key_node("uses") if len(roles) == 2 else node
            self.add(cast(yaml.Node, where), f"{what} needs exactly one of 'serves' or 'uses'")
            return None
        peer_node = spec.get("peer")
        peer = self.string(peer_node, "peer") if peer_node is not None else None
        if peer is not None and peer == owner:
            self.add(cast(yaml.Node, peer_node), f"{what} has itself as peer")
            peer = None
        role = roles[0]
        target_node = cast(yaml.Node, spec.get(role))
        target = self.interface_ref(target_node, what, role)
        if peer is None or target is None:
            return None
        schema, interface = target
        return Channel(
            name=name,
            peer=peer,
            role=cast(ChannelRole, role),
            schema=schema,
            interface=interface,
        )

    def interface_ref(self, node: yaml.Node, what: str, role: str) -> tuple[str, str] | None:
        text = self.string(node, role)
        if text is None:
            return None
        schema, sep, interface = text.rpartition(":")
        if not sep or not schema.endswith(".capnp") or not _INTERFACE.match(interface):
            self.add(node, f"bad {what} {role} {text!r}: expected FILE.capnp:Interface")
            return None
        path = os.path.normpath(self.base / schema)
        if not Path(path).is_file():
            self.add(node, f"{what}: schema file {schema!r} not found ({path})")
            return None
        where = f"{self.what}: {what}" if self.what else what
        self.schema_refs.append((node, where, path, interface))
        return path, interface

    def check_handle_clash(
        self, fds: tuple[Fd, ...], fds_node: yaml.Node | None, nodes: _graph.ProcessNodes
    ) -> None:
        if fds_node is None or not isinstance(fds_node, yaml.MappingNode):
            return
        fd_names = {fd.name for fd in fds}
        for name, key in nodes.channels.items():
            if name in fd_names:
                self.add(key, f"channel '{name}' has the same name as fd '{name}'")

    def restart(self, node: yaml.Node) -> Restart | None:
        policies = get_args(RestartPolicy)
        if _yaml.is_str(node):
            policy = self.choice(node, "restart policy", policies)
            return None if policy is None else Restart(policy=cast(RestartPolicy, policy))
        keys = ("policy", "max_restarts", "backoff", "backoff_max")
        spec = self.mapping(node, "restart", keys)
        if spec is None:
            return None
        default = Restart()
        default_policy: str = default.policy
        policy = self.field(
            spec, "policy", lambda n: self.choice(n, "restart policy", policies), default_policy
        )
        max_restarts = self.field(
            spec,
            "max_restarts",
            lambda n: self.integer(n, "max_restarts", 0, 2**31 - 1),
            default.max_restarts,
        )
        backoff = self.field(
            spec, "backoff", lambda n: self.number(n, "backoff", 0.0), default.backoff_initial
        )
        backoff_max = self.field(
            spec, "backoff_max", lambda n: self.number(n, "backoff_max", 0.0), default.backoff_max
        )
        if backoff_max < backoff:
            where = spec.key_node("backoff_max") or spec.key_node("backoff")
            self.add(
                cast(yaml.Node, where), f"restart backoff_max {backoff_max:g} < backoff {backoff:g}"
            )
        return Restart(
            policy=cast(RestartPolicy, policy),
            max_restarts=max_restarts,
            backoff_initial=backoff,
            backoff_max=backoff_max,
        )

    def environment(self, node: yaml.Node) -> tuple[tuple[str, str], ...] | None:
        spec = self.mapping(node, "environment", None)
        if spec is None:
            return None
        env = []
        for key, value in spec:
            name = key.value
            if not _ENV_NAME.match(name):
                self.add(key, f"bad environment variable name '{name}'")
                continue
            if name in _RESERVED_ENV or name.startswith("PRIVSEP_"):
                self.add(key, f"environment variable '{name}' is reserved for the supervisor")
                continue
            text = self.text(value, f"environment {name}")
            if text is not None:
                env.append((name, text))
        return tuple(env)

    def degrade(self, node: yaml.Node) -> tuple[str, ...] | None:
        known = _names.degradations()
        names = []
        for item in self.items(node, "degrade"):
            name = self.string(item, "degradation")
            if name is None:
                continue
            if name not in known:
                listed = ", ".join(sorted(known))
                self.add(item, f"unknown degradation {name!r}: known: {listed}")
                continue
            names.append(name)
        return tuple(dict.fromkeys(names))
