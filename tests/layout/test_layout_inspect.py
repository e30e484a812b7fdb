"""`privsep inspect`: the exact JSON shape per process, and the aligned human table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from privsep._cli import main
from privsep.layout import Seccomp
from privsep.sandbox._profiles import resolve_allowlist

SCHEMA = "@0xd0a1b2c3d4e5f601;\ninterface Counter { get @0 () -> (value :UInt64); }\n"

LAYOUT = """\
service: demo
parameters:
  netns: {default: ""}
processes:
  client:
    entry: demo.client:main
    channels:
      counter: {peer: server, uses: "c.capnp:Counter"}
  server:
    entry: demo.server:main
    user: {uid: 65534, gid: 65534}
    capabilities: [CAP_NET_ADMIN, CAP_NET_RAW]
    namespaces: {net: "netns:${netns}"}
    seccomp: {allow: [sendmsg], deny: [ptrace]}
    binds: [{path: /var/lib/demo, mode: rw}]
    landlock: [{path: /var/lib/demo, access: [read, write, create]}]
    fds:
      route: {netlink: route}
      state: {file: {path: /var/lib/demo/state, mode: rw}}
    channels:
      counter: {peer: client, serves: "c.capnp:Counter"}
  legacy:
    command: [/bin/true]
    namespaces: {net: host}
    degrade: [no-landlock, no-seccomp]
"""

PROCESS_KEYS = {
    "name",
    "uid",
    "capabilities",
    "namespaces",
    "seccomp",
    "landlock",
    "fds",
    "exposure",
}


@pytest.fixture
def layout_path(tmp_path: Path) -> Path:
    (tmp_path / "c.capnp").write_text(SCHEMA)
    path = tmp_path / "layout.yaml"
    path.write_text(LAYOUT)
    return path


def inspect_json(capsys: pytest.CaptureFixture[str], path: Path, *sets: str) -> dict[str, Any]:
    argv = ["inspect", "--json", str(path)]
    for item in sets:
        argv += ["--set", item]
    assert main(argv) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in report["processes"]}


def test_json_top_level_shape(layout_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = inspect_json(capsys, layout_path, "netns=lab")
    assert set(report) == {"service", "parameters", "processes"}
    assert report["service"] == "demo"
    assert report["parameters"] == {"netns": "lab"}
    # Start order: the server before its client.
    assert [p["name"] for p in report["processes"]] == ["server", "client", "legacy"]


def test_every_process_has_exactly_the_contract_keys_and_types(
    layout_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for proc in inspect_json(capsys, layout_path)["processes"]:
        assert set(proc) == PROCESS_KEYS
        assert isinstance(proc["name"], str)
        assert proc["uid"] == "dynamic" or isinstance(proc["uid"], int)
        assert all(isinstance(c, str) and c.startswith("CAP_") for c in proc["capabilities"])
        assert all(isinstance(n, str) for n in proc["namespaces"])
        assert proc["seccomp"] is None or (
            set(proc["seccomp"]) == {"default", "allowed"}
            and proc["seccomp"]["default"] == "ENOSYS"
            and isinstance(proc["seccomp"]["allowed"], int)
        )
        assert proc["landlock"] is None or all(
            set(rule) == {"path", "access"}
            and rule["path"].startswith("/")
            and rule["access"]
            and all(isinstance(a, str) for a in rule["access"])
            for rule in proc["landlock"]
        )
        assert all(isinstance(f, str) for f in proc["fds"])
        assert proc["exposure"] is None


def test_json_values_reflect_the_grants(
    layout_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    procs = by_name(inspect_json(capsys, layout_path, "netns=lab"))
    server, client, legacy = procs["server"], procs["client"], procs["legacy"]

    assert (server["uid"], client["uid"]) == (65534, "dynamic")
    assert server["capabilities"] == ["CAP_NET_ADMIN", "CAP_NET_RAW"]
    assert client["capabilities"] == []

    always = ["mount", "pid", "ipc", "uts", "cgroup"]
    assert client["namespaces"] == [*always, "net"]  # default: a new, empty netns
    assert server["namespaces"] == always  # joins netns "lab"
    assert legacy["namespaces"] == always  # host network

    assert server["seccomp"] == {
        "default": "ENOSYS",
        "allowed": len(resolve_allowlist(Seccomp(allow=("sendmsg",), deny=("ptrace",)))),
    }
    assert client["seccomp"] == {"default": "ENOSYS", "allowed": len(resolve_allowlist(Seccomp()))}
    assert legacy["seccomp"] is None  # degrade: no-seccomp

    assert {"path": "/var/lib/demo", "access": ["read", "write", "create"]} in server["landlock"]
    assert {"path": "/var/lib/demo", "access": ["read", "write", "create"]} not in client[
        "landlock"
    ]
    # The schema is readable; here through its directory (the code path, read+execute),
    # so, as in the launcher, no rule of its own.
    schema = str(layout_path.parent / "c.capnp")
    covering = [r for r in client["landlock"] if (schema + "/").startswith(r["path"] + "/")]
    assert [r["access"] for r in covering] == [["read", "execute"]]
    assert all(Path(r["path"]).exists() for r in client["landlock"])  # as applied: no /lib32
    assert legacy["landlock"] is None  # degrade: no-landlock

    assert server["fds"] == ["route", "state", "counter"]  # resources, then channels
    assert client["fds"] == ["counter"]
    assert legacy["fds"] == []


def test_the_table_has_one_aligned_row_per_process(
    layout_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(layout_path), "--set", "netns=lab"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header == [
        "PROCESS",
        "UID",
        "CAPS",
        "NAMESPACES",
        "SECCOMP",
        "LANDLOCK",
        "FDS",
        "EXPOSURE",
    ]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert list(rows) == ["server", "client", "legacy"]
    assert rows["server"][1:3] == ["65534", "net_admin,net_raw"]
    assert rows["client"][1:3] == ["dynamic", "-"]
    assert rows["server"][3] == "mount,pid,ipc,uts,cgroup,net:lab"
    default_allowed = len(resolve_allowlist(Seccomp()))
    assert rows["client"][3:5] == ["mount,pid,ipc,uts,cgroup,net", f"allow:{default_allowed}"]
    assert rows["legacy"][3:6] == ["mount,pid,ipc,uts,cgroup,net:host", "off", "off"]
    assert all(row[-1] == "-" for row in rows.values())  # exposure: not scored yet
    # Aligned: every column starts at the same offset on every line.
    starts = [lines[0].index(name) for name in header]
    for line in lines[1:]:
        for start in starts[1:]:
            assert line[start - 2 : start] == "  "
            assert line[start] != " "


def test_inspect_of_a_bad_layout_exits_2(
    layout_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", "--json", str(layout_path), "--set", "nope=1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{layout_path}:2: --set nope=1: unknown parameter 'nope'\n"


def test_command_and_user_namespace_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "layout.yaml"
    path.write_text(
        "service: s\nprocesses:\n"
        "  tool:\n    command: [sh]\n    namespaces: {user: true}\n"
        "  degraded:\n    entry: m:main\n    namespaces: {user: true}\n"
        "    degrade: [no-user-namespace]\n"
    )
    procs = by_name(inspect_json(capsys, path))
    assert procs["tool"]["namespaces"][-2:] == ["net", "user"]
    assert "user" not in procs["degraded"]["namespaces"]
    rules = {rule["path"]: rule["access"] for rule in procs["tool"]["landlock"]}
    # A command process may read and execute the usual binary directories.
    assert rules["/usr/bin"] == ["read", "execute"]
    assert rules["/proc"] == ["read"]
    # A bare name is resolved as the launcher resolves it, never against the current directory.
    assert not any(path.startswith(str(Path.cwd()) + "/sh") for path in rules)
    assert "/usr/bin" not in {r["path"] for r in procs["degraded"]["landlock"]}


def test_landlock_rules_show_one_entry_per_path_with_the_union_of_rights(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from privsep._cli._dhcp_cmd import layout_path as dhcp_layout
    from privsep.layout import LANDLOCK_RIGHTS, load_layout
    from privsep.layout._names import landlock_rules as launcher_rules

    assert main(["inspect", str(dhcp_layout()), "--set", "interface=eth0", "--json"]) == 0
    processes = json.loads(capsys.readouterr().out)["processes"]
    layout = load_layout(dhcp_layout(), {"interface": "eth0"})
    for process in processes:
        rules = process["landlock"]
        paths = [rule["path"] for rule in rules]
        assert len(paths) == len(set(paths)), process["name"]
        union: dict[str, set[str]] = {}
        for path, rights in launcher_rules(layout.process(process["name"])):
            union.setdefault(path, set()).update(rights)
        assert {r["path"]: set(r["access"]) for r in rules} == union
        for rule in rules:
            assert rule["access"] == [r for r in LANDLOCK_RIGHTS if r in rule["access"]]
