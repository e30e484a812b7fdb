"""The supervisor end to end, with real sandboxes: restarts, giving up, stopping, output."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from supervisor_helpers import EXAMPLE, SERVICES, RunningLayout, component_pid, wait_locked

pytestmark = pytest.mark.sandbox

Run = Callable[..., RunningLayout]


def test_kill_9_restarts_process_per_policy(run_layout: Run) -> None:
    # 20 increments 50 ms apart: the client is mid-way when its server dies.
    run = run_layout(EXAMPLE, "increments=20", "delay=0.05")
    server = run.started("counter-server")
    run.wait_for(lambda e: e.get("event") == "serving")
    os.kill(component_pid(server["pid"]), signal.SIGKILL)

    restart = run.wait_for(lambda e: e.get("event") == "restart")
    assert restart["child"] == "counter-server"
    assert restart["attempt"] == 1
    assert restart["delay"] == pytest.approx(0.1)
    assert restart["peers"] == ["counter-client"]
    # Both ends got a fresh channel: both processes started again, server first.
    new_server = run.started("counter-server", after=1)
    new_client = run.started("counter-client", after=1)
    assert new_server["pid"] != server["pid"]
    assert new_server["ts"] <= new_client["ts"]
    assert new_server["restarts"] == 1
    assert new_client["restarts"] == 0  # stopped for its peer: its budget is untouched
    # A fresh client on a fresh server counts from zero to the end, then all exit 0.
    result = run.wait_for(lambda e: e.get("event") == "result")
    assert result["process"] == "counter-client"
    assert result["value"] == 20
    assert run.wait() == 0
    events = [e["event"] for e in run.events if e.get("process") == "supervisor"]
    assert events.count("restart") == 1
    assert "give-up" not in events


def test_restart_gives_up_after_max_restarts_and_exits_nonzero(run_layout: Run) -> None:
    run = run_layout(SERVICES / "crash.yaml")
    assert run.wait() == 1
    supervisor = [e for e in run.events if e.get("process") == "supervisor"]
    restarts = [e for e in supervisor if e["event"] == "restart"]
    assert [(e["attempt"], e["delay"]) for e in restarts] == [(1, 0.01), (2, 0.02)]
    assert [e["event"] for e in supervisor].count("start") == 3
    give_up = next(e for e in supervisor if e["event"] == "give-up")
    assert give_up["child"] == "crasher"
    assert give_up["restarts"] == 2
    assert give_up["required"] is True
    assert give_up["level"] == "error"
    # The component's own failure report is forwarded, tagged with its name.
    failures = [e for e in run.events if e.get("event") == "component-failed"]
    assert len(failures) == 3
    assert {e["process"] for e in failures} == {"crasher"}


def _namespaces(pid: int) -> set[tuple[str, int]]:
    """The namespaces of `pid` that are not the test's own, as (kind, inode)."""
    own = {ns.name: ns.stat().st_ino for ns in Path("/proc/self/ns").iterdir()}
    found = set()
    for ns in Path(f"/proc/{pid}/ns").iterdir():
        inode = ns.stat().st_ino
        if inode != own.get(ns.name):
            found.add((ns.name, inode))
    return found


def _ticks_now() -> int:
    return int(float(Path("/proc/uptime").read_text().split()[0]) * os.sysconf("SC_CLK_TCK"))


def _old_holders(inodes: set[int], before_ticks: int) -> list[str]:
    """Processes started before `before_ticks` that are in one of the namespaces `inodes`.

    Namespace inodes are recycled, and other tests create namespaces meanwhile:
    a process started after our stop that holds a recycled inode is not ours.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            held = {ns.stat().st_ino for ns in (entry / "ns").iterdir()} & inodes
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        started = int(stat.rsplit(")", 1)[1].split()[19])
        if held and started <= before_ticks:
            found.append(stat[:80])
    return found


def _mounts() -> set[str]:
    # Other tests may add network namespaces (bind mounts under /run/netns) meanwhile.
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return {" ".join(line.split()[3:5]) for line in lines if "/netns" not in line}


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"


def test_sigterm_leaves_no_process_mount_or_namespace(run_layout: Run) -> None:
    mounts_before = _mounts()
    run = run_layout(EXAMPLE, "increments=1000", "delay=0.05")
    helpers = [run.started(name)["pid"] for name in ("counter-server", "counter-client")]
    run.wait_for(lambda e: e.get("event") == "serving")
    components = [component_pid(pid) for pid in helpers]
    for pid in components:  # fully started: every lock on, signal handlers in place
        wait_locked(pid)
    pids = {run.popen.pid, *helpers, *components}
    namespaces = set().union(*(_namespaces(pid) for pid in components))
    assert {ns for ns, _ in namespaces} >= {"mnt", "pid", "ipc", "uts", "net", "cgroup"}

    stopped_at = _ticks_now()
    run.popen.send_signal(signal.SIGTERM)
    assert run.wait() == 0

    alive = {pid: _state(pid) for pid in pids if Path(f"/proc/{pid}").exists()}
    assert alive == {}, (helpers, components, [x for x in run.lines if "supervisor" in x])
    assert _old_holders({inode for _, inode in namespaces}, stopped_at) == []
    assert _mounts() - mounts_before == set()
    # Reverse start order: the client first (the server may then end by itself,
    # seeing its only client go: it is stopped only if still running).
    stops = [e["child"] for e in run.events if e.get("event") == "stop"]
    assert stops in (["counter-client"], ["counter-client", "counter-server"])
    exits = [e["child"] for e in run.events if e.get("event") == "exit"]
    assert sorted(exits) == ["counter-client", "counter-server"]
    kills = [e for e in run.events if e.get("event") in ("kill", "stop", "exit")]
    assert not [e for e in kills if e["event"] == "kill"], kills  # SIGTERM sufficed


def test_stderr_lines_become_json_tagged_with_process(run_layout: Run) -> None:
    run = run_layout(SERVICES / "noisy.yaml")
    assert run.wait() == 0
    events = run.events  # every line parsed as JSON, or this raises
    mine = [e for e in events if e.get("process") == "noisy"]
    lines = [(e["event"], e.get("line", "")[:20], e.get("truncated", False)) for e in mine]
    # stdout and stderr are separate pipes: order is kept within each only.
    assert [line for line in lines if line[0] == "stdout"] == [("stdout", "to stdout", False)]
    assert [line for line in lines if line[0] != "stdout"] == [
        ("stderr", "plain text line", False),
        ("spoof", "", False),
        ("stderr", "[1, 2, 3]", False),
        ("stderr", "{not json", False),
        ("stderr", "\ufffd\ufffd bad utf-8", False),
        ("stderr", "[" * 20, True),
        ("stderr", "x" * 20, True),
        ("stderr", "no newline at exit", False),
    ]
    assert max(len(e.get("line", "")) for e in mine) == 8192
    # The spoofed line kept its fields but not its claimed origin.
    assert next(e for e in mine if e["event"] == "spoof")["n"] == 1
    assert not [e for e in events if e.get("event") == "spoof" and e["process"] != "noisy"]
