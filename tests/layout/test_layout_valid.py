"""Valid layouts: every key lands in the typed model, resolved, with defaults filled in."""

from __future__ import annotations

from pathlib import Path

import pytest

import privsep.layout
from privsep.layout import (
    Bind,
    Channel,
    ConnectFd,
    Fd,
    FileFd,
    LandlockRule,
    LayoutError,
    ListenFd,
    Namespaces,
    NetlinkFd,
    Network,
    PacketFd,
    Process,
    Restart,
    Seccomp,
    User,
    load_layout,
    parse_set,
    process_from_json,
    process_to_json,
)

SCHEMA = "@0xd0a1b2c3d4e5f601;\ninterface Counter { get @0 () -> (value :UInt64); }\n"

FULL = """\
service: counter
parameters:
  interface: {default: eth0, description: "interface to configure"}
  netns: {default: ""}
  port: "8080"
processes:
  counter-client:
    entry: counter.client:main
    channels:
      counter: {peer: counter-server, uses: "counter.capnp:Counter"}
  counter-server:
    entry: counter.server:main
    prepare: counter.server:prepare
    code: [., lib]
    user: {uid: 65534, gid: 65534}
    capabilities: [CAP_NET_ADMIN, CAP_NET_RAW]
    namespaces: {net: "netns:${netns}", user: true}
    binds: [{path: /var/lib/x, mode: rw}, /etc/hosts, {path: /srv/data/, target: /data}]
    landlock:
      - {path: /var/lib/x, access: [read, write, create, remove]}
    seccomp: {profile: default, allow: [sendmsg], deny: [ptrace]}
    rlimits: {nofile: 64, nproc: 64, as: 512M, core: 0, stack: unlimited}
    memory: 64M
    pids: 32
    fds:
      raw: {packet: {interface: "${interface}", filter: dhcp-client, netns: "${netns}"}}
      route: {netlink: {protocol: route, netns: "${netns}"}}
      route2: {netlink: route}
      http: {listen: {proto: tcp, address: 127.0.0.1, port: "${port}"}}
      upstream: {connect: {proto: udp, address: "::1", port: 53}}
      state: {file: {path: state/lease, mode: rw}}
    channels:
      counter: {peer: counter-client, serves: "counter.capnp:Counter"}
    restart: {policy: always, max_restarts: 3, backoff: 0.5, backoff_max: 4}
    required: false
    environment: {KEY: value, N: 3, LITERAL: "$${HOME}"}
    degrade: [no-cgroup-limits]
"""


@pytest.fixture
def service_dir(tmp_path: Path) -> Path:
    (tmp_path / "counter.capnp").write_text(SCHEMA)
    (tmp_path / "lib").mkdir()
    return tmp_path


def write(directory: Path, text: str, name: str = "layout.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_public_api_is_pinned() -> None:
    assert sorted(privsep.layout.__all__) == sorted(
        [
            "LANDLOCK_RIGHTS", "Bind", "Channel", "ConnectFd", "Fd", "FileFd", "LandlockRule",
            "Layout", "LayoutError", "ListenFd", "Namespaces", "NetlinkFd", "Network",
            "PacketFd", "Parameter", "Process", "Resource", "Restart", "Seccomp", "User",
            "load_layout", "parse_set", "process_from_json", "process_to_json",
        ]
    )  # fmt: skip


def test_every_key_lands_in_the_model(service_dir: Path) -> None:
    layout = load_layout(write(service_dir, FULL), {"netns": "ns1"})
    d = str(service_dir)
    assert layout.service == "counter"
    assert layout.path == f"{d}/layout.yaml"
    assert layout.values == (("interface", "eth0"), ("netns", "ns1"), ("port", "8080"))
    assert layout.process("counter-server") == Process(
        name="counter-server",
        entry="counter.server:main",
        prepare="counter.server:prepare",
        command=None,
        user=User(uid=65534, gid=65534, dynamic=False),
        capabilities=("CAP_NET_ADMIN", "CAP_NET_RAW"),
        namespaces=Namespaces(net=Network(mode="netns", netns="ns1"), user=True),
        binds=(
            Bind("/var/lib/x", "/var/lib/x", writable=True),
            Bind("/etc/hosts", "/etc/hosts"),
            Bind("/srv/data", "/data"),
        ),
        landlock=(LandlockRule("/var/lib/x", ("read", "write", "create", "remove")),),
        seccomp=Seccomp(profile="default", allow=("sendmsg",), deny=("ptrace",)),
        rlimits=(("nofile", 64), ("nproc", 64), ("as", 512 << 20), ("core", 0), ("stack", -1)),
        memory=64 << 20,
        pids=32,
        fds=(
            Fd("raw", PacketFd("eth0", "dhcp-client", "ns1")),
            Fd("route", NetlinkFd("route", "ns1")),
            Fd("route2", NetlinkFd("route", None)),
            Fd("http", ListenFd("tcp", "127.0.0.1", 8080)),
            Fd("upstream", ConnectFd("udp", "::1", 53)),
            Fd("state", FileFd(f"{d}/state/lease", "rw")),
        ),
        channels=(Channel("counter", "counter-client", "serves", f"{d}/counter.capnp", "Counter"),),
        restart=Restart(policy="always", max_restarts=3, backoff_initial=0.5, backoff_max=4.0),
        required=False,
        code_paths=(d, f"{d}/lib"),
        environment=(("KEY", "value"), ("N", "3"), ("LITERAL", "${HOME}")),
        degrade=("no-cgroup-limits",),
    )


def test_omitted_keys_are_the_default_deny_grants(service_dir: Path) -> None:
    layout = load_layout(write(service_dir, "service: s\nprocesses:\n  a: {entry: m:main}\n"))
    assert layout.processes == (Process(name="a", entry="m:main", code_paths=(str(service_dir),)),)
    process = layout.processes[0]
    assert process.capabilities == ()
    assert process.namespaces.net == Network(mode="none")
    assert process.user == User(dynamic=True)
    assert process.seccomp == Seccomp(profile="default")
    assert process.fds == process.channels == process.landlock == process.binds == ()


def test_parameter_defaults_apply_without_overrides(service_dir: Path) -> None:
    layout = load_layout(write(service_dir, FULL))
    server = layout.process("counter-server")
    # An empty `netns` parameter means the current namespace, for the process and its fds.
    assert server.namespaces.net == Network(mode="host")
    assert server.fds[0].resource == PacketFd("eth0", "dhcp-client", None)
    assert dict(layout.values) == {"interface": "eth0", "netns": "", "port": "8080"}


def test_overrides_replace_defaults_everywhere(service_dir: Path) -> None:
    layout = load_layout(
        write(service_dir, FULL), parse_set(["interface=veth7", "netns=lab", "port=9000"])
    )
    server = layout.process("counter-server")
    assert server.fds[0].resource == PacketFd("veth7", "dhcp-client", "lab")
    assert server.fds[3].resource == ListenFd("tcp", "127.0.0.1", 9000)
    assert server.namespaces.net == Network(mode="netns", netns="lab")


def test_an_override_is_validated_like_the_file(service_dir: Path) -> None:
    with pytest.raises(LayoutError) as info:
        load_layout(write(service_dir, FULL), {"port": "http"})
    assert info.value.problems == [
        f"{service_dir}/layout.yaml:29: process 'counter-server': bad port 'http': "
        "expected an integer"
    ]


def test_parse_set_keeps_the_last_value_and_allows_equals_in_values() -> None:
    assert parse_set(["a=1", "b=x=y", "a=2", "c="]) == {"a": "2", "b": "x=y", "c": ""}


def test_start_order_puts_servers_before_their_users(tmp_path: Path) -> None:
    (tmp_path / "c.capnp").write_text(SCHEMA)
    text = """\
service: s
processes:
  client:
    entry: m:main
    channels:
      engine: {peer: engine, uses: "c.capnp:Counter"}
  engine:
    entry: m:main
    channels:
      engine: {peer: client, serves: "c.capnp:Counter"}
      actuator: {peer: actuator, uses: "c.capnp:Counter"}
  logger:
    entry: m:main
  actuator:
    entry: m:main
    channels:
      actuator: {peer: engine, serves: "c.capnp:Counter"}
"""
    layout = load_layout(write(tmp_path, text))
    assert [p.name for p in layout.processes] == ["logger", "actuator", "engine", "client"]


def test_a_channel_cycle_starts_in_file_order(tmp_path: Path) -> None:
    (tmp_path / "c.capnp").write_text(SCHEMA)
    text = """\
service: s
processes:
  b:
    entry: m:main
    channels:
      x: {peer: a, uses: "c.capnp:Counter"}
      y: {peer: a, serves: "c.capnp:Counter"}
  a:
    entry: m:main
    channels:
      x: {peer: b, serves: "c.capnp:Counter"}
      y: {peer: b, uses: "c.capnp:Counter"}
"""
    assert [p.name for p in load_layout(write(tmp_path, text)).processes] == ["b", "a"]


def test_command_process(tmp_path: Path) -> None:
    text = "service: s\nprocesses:\n  a:\n    command: [/bin/sleep, 10, yes, 1.5]\n"
    text += "    environment: {DEBUG: on}\n"
    process = load_layout(write(tmp_path, text)).processes[0]
    # Scalars keep the text they were written as (YAML would make `yes` a boolean).
    assert process.command == ("/bin/sleep", "10", "yes", "1.5")
    assert process.environment == (("DEBUG", "on"),)
    assert process.entry is None


def test_every_process_survives_the_json_round_trip(service_dir: Path) -> None:
    layout = load_layout(write(service_dir, FULL), {"netns": "ns1"})
    for process in layout.processes:
        assert process_from_json(process_to_json(process)) == process


def test_yaml_anchors_and_merge_keys_share_settings(tmp_path: Path) -> None:
    text = """\
service: s
x-sandbox: &sandbox
  capabilities: [CAP_NET_RAW]
  pids: 10
processes:
  a:
    <<: *sandbox
    entry: m:main
    pids: 20
  b:
    <<: *sandbox
    entry: m:main
"""
    layout = load_layout(write(tmp_path, text))
    assert [(p.name, p.capabilities, p.pids) for p in layout.processes] == [
        ("a", ("CAP_NET_RAW",), 20),  # the process's own key wins over the merged one
        ("b", ("CAP_NET_RAW",), 10),
    ]


def test_parser_and_launcher_know_the_same_rlimits() -> None:
    # Two tables by design (the parser needs "is it a size", the launcher the RLIMIT_*
    # number); a name in one only would pass `check` and then fail at start.
    from privsep.layout._parse import RLIMITS as PARSED
    from privsep.sandbox._rlimits import RLIMITS as APPLIED

    assert set(PARSED) == set(APPLIED)
