"""Bad layouts: `privsep check` rejects each with exit 2 and exact `file:line: message` lines.

One table, one case per mistake a layout author can make. `{dir}` in an expected
message stands for the layout's directory. Every case also proves the problems
are collected, not just the first: several cases hold more than one mistake.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from privsep._cli import main

SCHEMA = (
    "@0xd0a1b2c3d4e5f601;\n"
    "interface Counter { get @0 () -> (value :UInt64); }\n"
    "interface Other { ping @0 (); }\n"
)


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    expected: tuple[str, ...]  # "LINE: message"
    sets: tuple[str, ...] = ()


CASES = [
    Case(
        "unknown-top-level-key",
        """\
service: s
processes:
  a: {entry: m:main}
servce: x
""",
        ("4: layout: unknown key 'servce' (did you mean 'service'?)",),
    ),
    Case(
        "unknown-process-key",
        """\
service: s
processes:
  a:
    entry: m:main
    capabilites: [CAP_NET_ADMIN]
""",
        ("5: process 'a': unknown key 'capabilites' (did you mean 'capabilities'?)",),
    ),
    Case(
        "unknown-capability",
        """\
service: s
processes:
  a:
    entry: m:main
    capabilities:
      - CAP_NET_RAW
      - CAP_NET_ADMN
""",
        ("7: process 'a': unknown capability 'CAP_NET_ADMN' (did you mean 'CAP_NET_ADMIN'?)",),
    ),
    Case(
        "unknown-syscall",
        """\
service: s
processes:
  a:
    entry: m:main
    seccomp: {profile: default, allow: [sendmsg, sendmsgg]}
""",
        ("5: process 'a': unknown syscall 'sendmsgg' in seccomp allow",),
    ),
    Case(
        "unknown-seccomp-profile",
        """\
service: s
processes:
  a:
    entry: m:main
    seccomp: {profile: strict}
""",
        ("5: process 'a': unknown seccomp profile 'strict'",),
    ),
    Case(
        "syscall-allowed-and-denied",
        """\
service: s
processes:
  a:
    entry: m:main
    seccomp:
      allow: [ptrace]
      deny: [ptrace]
""",
        ("7: process 'a': syscall 'ptrace' both allowed and denied",),
    ),
    Case(
        "entry-and-command",
        """\
service: s
processes:
  a:
    entry: m:main
    command: [/bin/true]
""",
        ("5: process 'a': has both 'entry' and 'command'",),
    ),
    Case(
        "neither-entry-nor-command",
        """\
service: s
processes:
  a:
    capabilities: []
""",
        ("3: process 'a': needs 'entry' (module:function) or 'command'",),
    ),
    Case(
        "prepare-with-command",
        """\
service: s
processes:
  a:
    command: [/bin/true]
    prepare: m:prepare
""",
        ("5: process 'a': 'prepare' needs 'entry'; a 'command' process has no prepare hook",),
    ),
    Case(
        "bad-entry",
        """\
service: s
processes:
  a:
    entry: counter.server.main
""",
        ("4: process 'a': bad entry 'counter.server.main': expected module:function",),
    ),
    Case(
        "relative-command",
        """\
service: s
processes:
  a:
    command: [bin/sleep, 10]
""",
        ("4: process 'a': command 'bin/sleep' must be an absolute path or a bare name",),
    ),
    Case(
        "channel-unknown-peer",
        """\
service: s
processes:
  a:
    entry: m:main
    channels:
      c: {peer: servr, uses: "c.capnp:Counter"}
  server:
    entry: m:main
""",
        ("6: process 'a': channel 'c': unknown peer process 'servr' (did you mean 'server'?)",),
    ),
    Case(
        "channel-peer-lacks-it",
        """\
service: s
processes:
  a:
    entry: m:main
    channels:
      c: {peer: b, uses: "c.capnp:Counter"}
  b:
    entry: m:main
""",
        ("6: process 'a': channel 'c': peer 'b' declares no channel 'c'",),
    ),
    Case(
        "channel-both-serve",
        """\
service: s
processes:
  a:
    entry: m:main
    channels:
      c: {peer: b, serves: "c.capnp:Counter"}
  b:
    entry: m:main
    channels:
      c: {peer: a, serves: "c.capnp:Counter"}
""",
        (
            "10: process 'b': channel 'c': both 'a' and 'b' serve it; "
            "one end serves, the other uses",
        ),
    ),
    Case(
        "channel-interfaces-differ",
        """\
service: s
processes:
  a:
    entry: m:main
    channels:
      c: {peer: b, serves: "c.capnp:Counter"}
  b:
    entry: m:main
    channels:
      c: {peer: a, uses: "c.capnp:Other"}
""",
        (
            "10: process 'b': channel 'c': interfaces differ: "
            "'a' has c.capnp:Counter, 'b' has c.capnp:Other",
        ),
    ),
    Case(
        "channel-peer-points-elsewhere",
        """\
service: s
processes:
  a:
    entry: m:main
    channels:
      c: {peer: b, uses: "c.capnp:Counter"}
  b:
    entry: m:main
    channels:
      c: {peer: x, serves: "c.capnp:Counter"}
  x:
    entry: m:main
    channels:
      c: {peer: b, uses: "c.capnp:Counter"}
""",
        ("6: process 'a': channel 'c': peer 'b' connects its channel 'c' to 'x', not 'a'",),
    ),
    Case(
        "channel-to-self",
        """\
service: s
processes:
  a:
    entry: m:main
    channels:
      c:
        peer: a
        serves: "c.capnp:Counter"
""",
        ("7: process 'a': channel 'c' has itself as peer",),
    ),
    Case(
        "channel-serves-and-uses",
        """\
service: s
processes:
  a:
    entry: m:main
    channels:
      c:
        peer: b
        serves: "c.capnp:Counter"
        uses: "c.capnp:Counter"
  b:
    entry: m:main
    channels:
      c: {peer: a, uses: "c.capnp:Counter"}
""",
        ("9: process 'a': channel 'c' needs exactly one of 'serves' or 'uses'",),
    ),
    Case(
        "channel-schema-missing",
        """\
service: s
processes:
  a:
    entry: m:main
    channels:
      c: {peer: b, serves: "missing.capnp:Counter"}
  b:
    entry: m:main
    channels:
      c: {peer: a, uses: "c.capnp:Counter"}
""",
        (
            "6: process 'a': channel 'c': schema file 'missing.capnp' not found "
            "({dir}/missing.capnp)",
        ),
    ),
    Case(
        "bad-net",
        """\
service: s
processes:
  a:
    entry: m:main
    namespaces: {net: bridge}
""",
        ("5: process 'a': bad net 'bridge': expected none, host or netns:NAME",),
    ),
    Case(
        "unknown-parameter-reference",
        """\
service: s
parameters:
  interface: {default: eth0}
processes:
  a:
    entry: m:main
    fds:
      raw: {packet: {interface: "${interfce}", filter: dhcp-client}}
""",
        ("8: unknown parameter '${interfce}' in '${interfce}' (did you mean 'interface'?)",),
    ),
    Case(
        "set-of-unknown-parameter",
        """\
service: s
parameters:
  interface: {default: eth0}
processes:
  a: {entry: m:main}
""",
        ("2: --set netns=ns1: unknown parameter 'netns'",),
        sets=("netns=ns1",),
    ),
    Case(
        "bad-fd-kind",
        """\
service: s
processes:
  a:
    entry: m:main
    fds:
      raw: {socket: {interface: eth0}}
""",
        (
            "6: process 'a': fd 'raw': unknown kind 'socket': "
            "expected packet, netlink, listen, connect, file",
        ),
    ),
    Case(
        "two-kinds-in-one-fd",
        """\
service: s
processes:
  a:
    entry: m:main
    fds:
      raw:
        packet: {interface: eth0, filter: dhcp-client}
        netlink: route
""",
        ("8: process 'a': fd 'raw' has two kinds, 'packet' and 'netlink'; give exactly one",),
    ),
    Case(
        "packet-fd-without-interface",
        """\
service: s
processes:
  a:
    entry: m:main
    fds:
      raw: {packet: {filter: dhcp-client}}
""",
        ("6: process 'a': fd 'raw' packet: missing required key 'interface'",),
    ),
    Case(
        "unknown-bpf-filter",
        """\
service: s
processes:
  a:
    entry: m:main
    fds:
      raw: {packet: {interface: eth0, filter: dhcp-server}}
""",
        ("6: process 'a': unknown packet filter 'dhcp-server': known filters: dhcp-client",),
    ),
    Case(
        "bad-ports",
        """\
service: s
processes:
  a:
    entry: m:main
    fds:
      http: {listen: {proto: tcp, address: 127.0.0.1, port: 70000}}
      up: {connect: {proto: udp, address: 127.0.0.1, port: 0}}
""",
        (
            "6: process 'a': bad port 70000: must be <= 65535",
            "7: process 'a': bad port 0: must be >= 1",
        ),
    ),
    Case(
        "bad-address-and-proto",
        """\
service: s
processes:
  a:
    entry: m:main
    fds:
      up:
        connect: {proto: sctp, address: localhost, port: 53}
""",
        (
            "7: process 'a': bad proto 'sctp': expected one of tcp, udp",
            "7: process 'a': bad address 'localhost': expected an IP address",
        ),
    ),
    Case(
        "bad-rlimit-name-and-values",
        """\
service: s
processes:
  a:
    entry: m:main
    rlimits:
      files: 10
      nofile: -1
      as: lots
""",
        (
            "6: process 'a': rlimits: unknown key 'files'",
            "7: process 'a': bad rlimit nofile -1: must be >= 0",
            "8: process 'a': bad rlimit as 'lots': expected a size like 4096, 64K, 512M or 1G",
        ),
    ),
    Case(
        "bad-memory-size",
        """\
service: s
processes:
  a:
    entry: m:main
    memory: 64Q
    pids: 0
""",
        (
            "5: process 'a': bad memory '64Q': expected a size like 4096, 64K, 512M or 1G",
            "6: process 'a': bad pids 0: must be >= 1",
        ),
    ),
    Case(
        "relative-bind-path",
        """\
service: s
processes:
  a:
    entry: m:main
    binds:
      - /etc/hosts
      - {path: var/lib/x, mode: rw}
      - {path: /var/lib/y, mode: wr}
""",
        (
            "7: process 'a': bind path 'var/lib/x' must be an absolute path",
            "8: process 'a': bad bind mode 'wr': expected one of ro, rw",
        ),
    ),
    Case(
        "integers-in-ascii-digits-only",
        """\
service: s
parameters:
  n: {default: "\u0665"}
processes:
  a:
    entry: m:main
    pids: ${n}
    memory: "\u0666\u0664M"
    rlimits: {nofile: " 64 "}
""",
        (
            "7: process 'a': bad pids '\u0665': expected an integer",
            "8: process 'a': bad memory '\u0666\u0664M': "
            "expected a size like 4096, 64K, 512M or 1G",
            "9: process 'a': bad rlimit nofile ' 64 ': expected an integer",
        ),
    ),
    Case(
        "bind-into-the-sandbox-own-dev-and-proc",
        """\
service: s
processes:
  a:
    entry: m:main
    binds:
      - {path: /srv/x, target: /dev/null, mode: rw}
      - /proc/sys
      - {path: /srv/y, target: /devices}
      - /dev
""",
        (
            "6: process 'a': bind target '/dev/null': /dev and /proc are the sandbox's own",
            "7: process 'a': bind path '/proc/sys': /dev and /proc are the sandbox's own",
            "9: process 'a': bind path '/dev': /dev and /proc are the sandbox's own",
        ),
    ),
    Case(
        "bad-landlock-right",
        """\
service: s
processes:
  a:
    entry: m:main
    landlock:
      - path: /var/lib/x
        access: [read, delete]
""",
        (
            "7: process 'a': bad landlock right 'delete': "
            "expected one of read, write, execute, create, remove",
        ),
    ),
    Case(
        "landlock-rules-with-no-landlock",
        """\
service: s
processes:
  a:
    entry: m:main
    landlock:
      - {path: /var/lib/x, access: [read]}
    degrade: [no-landlock]
""",
        ("5: process 'a': has landlock rules but degrades 'no-landlock'",),
    ),
    Case(
        "bad-restart-policy",
        """\
service: s
processes:
  a:
    entry: m:main
    restart: {policy: sometimes}
""",
        (
            "5: process 'a': bad restart policy 'sometimes': "
            "expected one of never, on-failure, always",
        ),
    ),
    Case(
        "negative-max-restarts-and-backoffs",
        """\
service: s
processes:
  a:
    entry: m:main
    restart:
      max_restarts: -1
      backoff: 2
      backoff_max: 1
""",
        (
            "6: process 'a': bad max_restarts -1: must be >= 0",
            "8: process 'a': restart backoff_max 1 < backoff 2",
        ),
    ),
    Case(
        "duplicate-fd-name",
        """\
service: s
processes:
  a:
    entry: m:main
    fds:
      route: {netlink: route}
      route: {netlink: route}
""",
        ("7: process 'a': fds: duplicate key 'route'",),
    ),
    Case(
        "fd-name-clashes-with-channel",
        """\
service: s
processes:
  a:
    entry: m:main
    fds:
      c: {netlink: route}
    channels:
      c: {peer: b, serves: "c.capnp:Counter"}
  b:
    entry: m:main
    channels:
      c: {peer: a, uses: "c.capnp:Counter"}
""",
        ("8: process 'a': channel 'c' has the same name as fd 'c'",),
    ),
    Case(
        "yaml-syntax-error",
        """\
service: s
processes:
  a:
    entry: m:main
   command: [/bin/true]
""",
        ("5: yaml syntax error: did not find expected key",),
    ),
    Case(
        "yaml-unclosed-flow-mapping",
        """\
service: s
processes:
  a: {entry: m:main
""",
        ("3: yaml syntax error: did not find expected ',' or '}'",),
    ),
    Case("empty-file", "", ("1: empty layout: expected a mapping with 'service' and 'processes'",)),
    Case(
        "top-level-not-a-mapping",
        """\
# a comment first
- service: s
""",
        ("2: top level must be a mapping, not a list",),
    ),
    Case(
        "missing-service-and-processes",
        """\
parameters: {}
""",
        (
            "1: layout: missing required key 'service'",
            "1: layout: missing required key 'processes'",
        ),
    ),
    Case(
        "bad-service-and-process-names",
        """\
service: My_Service
processes:
  Engine: {entry: m:main}
""",
        (
            "1: bad service 'My_Service': must match [a-z0-9-]+",
            "3: process name 'Engine' must match [a-z0-9-]+",
        ),
    ),
    Case(
        "user-without-gid",
        """\
service: s
processes:
  a:
    entry: m:main
    user: {uid: 0}
""",
        ("5: process 'a': user: missing required key 'gid'",),
    ),
    Case(
        "user-by-name",
        """\
service: s
processes:
  a:
    entry: m:main
    user: root
""",
        ("5: process 'a': bad user 'root': expected dynamic or {uid: N, gid: N}",),
    ),
    Case(
        "unknown-degradation",
        """\
service: s
processes:
  a:
    entry: m:main
    degrade: [no-sandbox]
""",
        (
            "5: process 'a': unknown degradation 'no-sandbox': known: landlock-abi-below-4, "
            "no-cgroup-limits, no-landlock, no-seccomp, no-user-namespace",
        ),
    ),
    Case(
        "reserved-environment-variable",
        """\
service: s
processes:
  a:
    entry: m:main
    environment:
      LISTEN_FDS: "3"
      PRIVSEP_PROCESS: x
""",
        (
            "6: process 'a': environment variable 'LISTEN_FDS' is reserved for the supervisor",
            "7: process 'a': environment variable 'PRIVSEP_PROCESS' is reserved for the supervisor",
        ),
    ),
    Case(
        "nul-in-a-string-and-bad-boolean",
        """\
service: s
processes:
  a:
    command: [/bin/echo, "a\\0b"]
    required: {when: always}
""",
        (
            "4: process 'a': 'command argument' must not contain a NUL character",
            "5: process 'a': bad required: expected true or false, not a mapping",
        ),
    ),
    Case(
        "bad-merge-key",
        """\
service: s
processes:
  a:
    <<: [1, 2]
    entry: m:main
""",
        ("4: process 'a': bad merge key: expected a mapping for merging, but found scalar",),
    ),
    Case(
        "duplicate-process",
        """\
service: s
processes:
  a: {entry: m:main}
  a: {entry: m:other}
""",
        ("4: processes: duplicate key 'a'",),
    ),
    Case(
        "channel-name-used-by-two-pairs",
        """\
service: s
processes:
  a:
    entry: m:main
    channels:
      c: {peer: b, serves: "c.capnp:Counter"}
  b:
    entry: m:main
    channels:
      c: {peer: a, uses: "c.capnp:Counter"}
  x:
    entry: m:main
    channels:
      c: {peer: y, serves: "c.capnp:Counter"}
  y:
    entry: m:main
    channels:
      c: {peer: x, uses: "c.capnp:Counter"}
""",
        (
            "14: process 'x': channel 'c': name already used by 'a' and 'b'",
            "18: process 'y': channel 'c': name already used by 'a' and 'b'",
        ),
    ),
    Case(
        "bad-channel-reference-and-name",
        """\
service: s
processes:
  a:
    entry: m:main
    channels:
      Chan: {peer: b, uses: "c.capnp:Counter"}
      c: {peer: b, uses: "Counter"}
""",
        (
            "6: process 'a': bad channel name 'Chan': must match [a-z0-9][a-z0-9_-]*",
            "7: process 'a': bad channel 'c' uses 'Counter': expected FILE.capnp:Interface",
        ),
    ),
    Case(
        "no-processes",
        """\
service: s
processes: {}
""",
        ("2: processes: at least one process is needed",),
    ),
    Case(
        "bad-parameters",
        """\
service: s
parameters:
  Bad-Name: x
  ok: [1, 2]
  good: {default: x, help: y}
processes:
  a: {entry: m:main}
""",
        (
            "3: parameter name 'Bad-Name' must match [a-z_][a-z0-9_]*",
            "4: parameter 'ok' default must be a string, not a list",
            "5: parameter 'good': unknown key 'help'",
        ),
    ),
    Case(
        "bad-namespace-names-and-interface",
        """\
service: s
processes:
  a:
    entry: m:main
    namespaces: {net: "netns:../etc", user: maybe}
    fds:
      raw: {packet: {interface: "eth0 with spaces", filter: dhcp-client, netns: "a/b"}}
""",
        (
            "5: process 'a': bad network namespace name '../etc'",
            "5: process 'a': bad namespaces.user 'maybe': expected true or false",
            "7: process 'a': bad interface 'eth0 with spaces': must match an interface name",
            "7: process 'a': bad network namespace name 'a/b'",
        ),
    ),
    Case(
        "code-dir-missing",
        """\
service: s
processes:
  a:
    entry: m:main
    code: [src]
""",
        ("5: process 'a': code path '{dir}/src' is not a directory",),
    ),
    Case(
        "bad-prepare-and-empty-command",
        """\
service: s
processes:
  a:
    entry: m:main
    prepare: "m:"
  b:
    command: []
""",
        (
            "5: process 'a': bad prepare 'm:': expected module:function",
            "7: process 'b': 'command' must not be empty",
        ),
    ),
    Case(
        "bad-uid-and-gid",
        """\
service: s
processes:
  a:
    entry: m:main
    user: {uid: -1, gid: 4294967295}
""",
        (
            "5: process 'a': bad uid -1: must be >= 0",
            "5: process 'a': bad gid 4294967295: must be <= 4294967294",
        ),
    ),
    Case(
        "bad-bind-target-and-landlock-access",
        """\
service: s
processes:
  a:
    entry: m:main
    binds: [{path: /srv, target: srv}]
    landlock:
      - {path: /srv, access: []}
      - {path: srv, access: [read]}
""",
        (
            "5: process 'a': bind target 'srv' must be an absolute path",
            "7: process 'a': landlock access must not be empty",
            "8: process 'a': landlock path 'srv' must be an absolute path",
        ),
    ),
    Case(
        "bad-restart-short-form-and-backoff",
        """\
service: s
processes:
  a:
    entry: m:main
    restart: sometimes
  b:
    entry: m:main
    restart: {backoff: -1, backoff_max: .inf}
""",
        (
            "5: process 'a': bad restart policy 'sometimes': "
            "expected one of never, on-failure, always",
            "8: process 'b': bad backoff -1: must be a finite number >= 0",
            "8: process 'b': bad backoff_max .inf: must be a finite number >= 0",
        ),
    ),
    Case(
        "bad-environment-and-file-mode",
        """\
service: s
processes:
  a:
    entry: m:main
    environment: {"1X": a, OK: [list]}
    fds:
      state: {file: {path: state, mode: rwx}}
      Bad: {netlink: route}
""",
        (
            "5: process 'a': bad environment variable name '1X'",
            "5: process 'a': 'environment OK' must be a string, not a list",
            "7: process 'a': bad file mode 'rwx': expected one of r, w, rw, a",
            "8: process 'a': bad fd name 'Bad': must match [a-z0-9][a-z0-9_-]*",
        ),
    ),
    Case(
        "bad-netlink-protocol-and-empty-fd",
        """\
service: s
processes:
  a:
    entry: m:main
    fds:
      route: {netlink: generic}
      audit: {netlink: {protocol: audit}}
      nothing: {}
""",
        (
            "6: process 'a': bad netlink protocol 'generic': expected one of route",
            "7: process 'a': bad netlink protocol 'audit': expected one of route",
            "8: process 'a': fd 'nothing' needs one of packet, netlink, listen, connect, file",
        ),
    ),
    Case(
        "unknown-denied-syscall-and-bad-types",
        """\
service: s
processes:
  a:
    entry: m:main
    seccomp: {deny: [no_such_call]}
    capabilities: CAP_NET_RAW
    memory: [64M]
""",
        (
            "5: process 'a': unknown syscall 'no_such_call' in seccomp deny",
            "6: process 'a': capabilities must be a list, not a string",
            "7: process 'a': 'memory' must be a string, not a list",
        ),
    ),
    Case(
        "several-problems-reported-in-file-order",
        """\
service: s
processes:
  a:
    entry: m:main
    capabilities: [CAP_BOGUS]
    namespaces: {net: hostt}
  b:
    entry: m:main
    pids: many
""",
        (
            "5: process 'a': unknown capability 'CAP_BOGUS'",
            "6: process 'a': bad net 'hostt': expected none, host or netns:NAME",
            "9: process 'b': bad pids 'many': expected an integer",
        ),
    ),
]


def write_layout(tmp_path: Path, text: str) -> Path:
    (tmp_path / "c.capnp").write_text(SCHEMA)
    path = tmp_path / "layout.yaml"
    path.write_text(text)
    return path


def test_the_table_covers_at_least_25_mistakes() -> None:
    assert len(CASES) >= 25
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_invalid_layout_is_rejected_with_exact_lines(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_layout(tmp_path, case.text)
    argv = ["check", str(path)]
    for item in case.sets:
        argv += ["--set", item]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    expected = [f"{path}:{line.replace('{dir}', str(tmp_path))}" for line in case.expected]
    assert err.splitlines() == expected


def test_check_as_a_command_exits_2_with_one_line_per_problem(tmp_path: Path) -> None:
    path = write_layout(tmp_path, "service: s\nprocesses:\n  a: {entry: m:main, pids: 0}\nx: 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "privsep", "check", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}:3: process 'a': bad pids 0: must be >= 1",
        f"{path}:4: layout: unknown key 'x'",
    ]


def test_check_of_a_valid_layout_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_layout(tmp_path, "service: s\nprocesses:\n  a: {entry: m:main}\n")
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr() == (f"{path}: ok (s: 1 process)\n", "")


def test_missing_layout_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nope.yaml"
    assert main(["check", str(path)]) == 2
    assert capsys.readouterr().err == f"{path}:1: cannot read layout: no such file\n"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: Path("/dev/zero"), "not a regular file"),  # never ends
        (lambda d: (os.mkfifo(d / "f.yaml"), d / "f.yaml")[1], "not a regular file"),  # blocks
        (lambda d: d, "is a directory"),
        (
            lambda d: (d / "big.yaml").write_text("#" * (2 << 20)) and d / "big.yaml",
            "larger than 1024 KiB",
        ),
    ],
)
def test_a_layout_that_is_no_small_regular_file_is_one_line_at_once(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], Path],
    message: str,
) -> None:
    path = make(tmp_path)
    assert main(["check", str(path)]) == 2
    assert capsys.readouterr().err == f"{path}:1: cannot read layout: {message}\n"


def test_check_parses_the_schemas_and_finds_the_interfaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # pycapnp aborts the process on a schema it cannot parse: check must survive that
    # (the parse runs in a forked child) and say where, in the layout and the schema.
    (tmp_path / "bad.capnp").write_text("not a capnp file {{{\n")
    (tmp_path / "good.capnp").write_text(
        "@0xd2d5e6f4a1b2c3d4;\ninterface Counter { next @0 () -> (n :UInt32); }\n"
    )
    path = write_layout(
        tmp_path,
        """\
service: s
processes:
  a:
    entry: m:main
    channels:
      x: {peer: b, uses: "bad.capnp:Counter"}
      y: {peer: b, uses: "good.capnp:Counter"}
      z: {peer: b, uses: "good.capnp:Nope"}
  b:
    entry: m:main
    channels:
      x: {peer: a, serves: "bad.capnp:Counter"}
      y: {peer: a, serves: "good.capnp:Counter"}
      z: {peer: a, serves: "good.capnp:Nope"}
""",
    )
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    bad, good = tmp_path / "bad.capnp", tmp_path / "good.capnp"
    assert err == [
        f"{path}:6: process 'a': channel 'x': cannot load schema {bad}: "
        "bad.capnp:1: failed: Parse error.",
        f"{path}:8: process 'a': channel 'z': schema {good} has no interface Nope",
        f"{path}:12: process 'b': channel 'x': cannot load schema {bad}: "
        "bad.capnp:1: failed: Parse error.",
        f"{path}:14: process 'b': channel 'z': schema {good} has no interface Nope",
    ]


def test_malformed_set_option_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_layout(tmp_path, "service: s\nprocesses:\n  a: {entry: m:main}\n")
    assert main(["check", str(path), "--set", "novalue"]) == 2
    assert capsys.readouterr().err == (
        "--set novalue: expected KEY=VALUE with KEY like [a-z_][a-z0-9_]*\n"
    )
