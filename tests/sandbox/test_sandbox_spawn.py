"""The launcher's process behaviour: exit status, signals, cleanup, fail-closed set-up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from privsep.layout import Layout, load_layout
from privsep.sandbox import Sandboxed, SandboxError, _cgroups, spawn

pytestmark = pytest.mark.sandbox

LAYOUT = Path(__file__).parent / "layouts" / "components.yaml"


@pytest.fixture(scope="module")
def layout() -> Layout:
    if os.geteuid() != 0:
        pytest.skip("the launcher needs root")
    return load_layout(LAYOUT)


@pytest.fixture
def started() -> Iterator[list[Sandboxed]]:
    """Processes a test starts; killed (through their helper) if the test leaves them."""
    processes: list[Sandboxed] = []
    yield processes
    for process in processes:
        process.__exit__(None, None, None)


def _start(
    layout: Layout, name: str, started: list[Sandboxed], fds: dict[str, int] | None = None
) -> Sandboxed:
    process = spawn(
        layout.process(name),
        fds or {},
        layout=layout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    started.append(process)
    return process


def _wait_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie waiting for the host's init counts)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.005)
    return False


def test_sigterm_stops_a_running_component_cleanly(
    layout: Layout, started: list[Sandboxed]
) -> None:
    process = _start(layout, "sleeper", started)
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    process.send_signal(signal.SIGTERM)
    assert process.wait(5) == 0


def test_the_component_is_pid_1_of_its_namespace_under_the_spawned_pid(
    layout: Layout, started: list[Sandboxed]
) -> None:
    process = _start(layout, "sleeper", started)
    assert process.stdout is not None
    process.stdout.readline()
    with open(f"/proc/{process.pid}/status") as f:
        nspid = next(line for line in f if line.startswith("NSpid:")).split()
    assert nspid == ["NSpid:", str(process.pid), "1"]


def test_sigkill_of_the_component_is_its_exit_status(
    layout: Layout, started: list[Sandboxed]
) -> None:
    process = _start(layout, "sleeper", started)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(5) == -signal.SIGKILL


def test_the_sandbox_dies_with_its_spawner(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the launcher needs root")
    spawner = tmp_path / "spawner.py"
    spawner.write_text(
        "import sys, time\n"
        "from privsep.layout import load_layout\n"
        "from privsep.sandbox import spawn\n"
        f"layout = load_layout({str(LAYOUT)!r})\n"
        "p = spawn(layout.process('sleeper'), {}, layout=layout)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, str(spawner)], stdout=subprocess.PIPE) as parent:
        assert parent.stdout is not None
        sandbox = int(parent.stdout.readline())
        parent.kill()
        parent.wait(5)
    assert _wait_gone(sandbox)


def test_exit_status_of_the_component_is_relayed(layout: Layout, started: list[Sandboxed]) -> None:
    assert _start(layout, "exits", started).wait(10) == 7


def test_failing_component_exits_1_with_a_json_log_line(
    layout: Layout, started: list[Sandboxed]
) -> None:
    process = _start(layout, "failing", started)
    _, err = process.communicate(timeout=10)
    assert process.returncode == 1
    assert err is not None
    line = json.loads(err.decode().splitlines()[0])
    assert line["process"] == "failing"
    assert line["event"] == "component-failed"
    assert "broke on purpose" in line["error"]


def test_prepare_runs_before_the_locks_and_main_after(
    layout: Layout, started: list[Sandboxed]
) -> None:
    out, _ = _start(layout, "prepared", started).communicate(timeout=10)
    assert out == b"prepare saw NoNewPrivs 0, main sees 1\n"


def test_async_entry_runs_locked_inside_its_loop(layout: Layout, started: list[Sandboxed]) -> None:
    out, err = _start(layout, "async", started).communicate(timeout=10)
    assert out == b"async main sees NoNewPrivs 1 fds []\n", err


def test_channel_peer_sees_eof_when_the_component_dies(
    layout: Layout, started: list[Sandboxed]
) -> None:
    ours, theirs = socket.socketpair()
    with ours:
        try:
            process = _start(layout, "quitter", started, {"link": theirs.fileno()})
        finally:
            theirs.close()
        os.kill(process.pid, signal.SIGKILL)
        ours.settimeout(5)
        assert ours.recv(1) == b""  # nobody, not even the helper, holds the other end
        process.wait(5)


def test_concurrent_processes_get_distinct_dynamic_uids(
    layout: Layout, started: list[Sandboxed]
) -> None:
    uids = set()
    for _ in range(2):
        process = _start(layout, "sleeper", started)
        assert process.stdout is not None
        process.stdout.readline()
        with open(f"/proc/{process.pid}/status") as f:
            uid_line = next(line for line in f if line.startswith("Uid:"))
        uids.add(int(uid_line.split()[1]))
    assert len(uids) == 2
    assert all(61184 <= uid <= 65519 for uid in uids)


def test_missing_network_namespace_fails_closed(layout: Layout) -> None:
    with pytest.raises(SandboxError, match="no network namespace privsep-does-not-exist"):
        spawn(layout.process("netns-missing"), {}, layout=layout)


def test_user_namespace_process_gets_its_own_user_namespace(
    layout: Layout, started: list[Sandboxed]
) -> None:
    process = _start(layout, "userns", started)
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    assert Path(f"/proc/{process.pid}/ns/user").readlink() != Path("/proc/self/ns/user").readlink()
    uid_map = Path(f"/proc/{process.pid}/uid_map").read_text().split()
    assert uid_map[0] == uid_map[1] and uid_map[2] == "1"
    assert 61184 <= int(uid_map[0]) <= 65519


def test_unknown_degradation_fails_closed(layout: Layout) -> None:
    import dataclasses

    process = dataclasses.replace(layout.process("sleeper"), degrade=("no-everything",))
    with pytest.raises(SandboxError, match="unknown degradation 'no-everything'"):
        spawn(process, {}, layout=layout)


def test_cgroup_limits_apply_or_fail_closed(layout: Layout, started: list[Sandboxed]) -> None:
    if _cgroups.locate("pids") is None or _cgroups.locate("memory") is None:
        with pytest.raises(SandboxError, match="no-cgroup-limits"):
            spawn(layout.process("limited"), {}, layout=layout)
        return
    process = _start(layout, "limited", started)
    assert process.stdout is not None
    process.stdout.readline()
    with open(f"/proc/{process.pid}/cgroup") as f:
        groups = {line.split(":")[1]: line.rstrip("\n").split(":", 2)[2] for line in f}
    pids_dir, _ = _cgroups.locate("pids")  # type: ignore[misc]
    mount = "/sys/fs/cgroup/pids" if "pids" in groups else "/sys/fs/cgroup/unified"
    directory = mount + groups.get("pids", groups.get(""))
    assert Path(directory).name.startswith(f"privsep-limited-{os.getpid()}-")
    assert Path(directory).parent == Path(pids_dir)
    with open(f"{directory}/pids.max") as f:
        assert f.read().strip() == "16"
    process.send_signal(signal.SIGTERM)
    assert process.wait(5) == 0
    assert not Path(directory).exists()  # removed by the helper after the exit


def test_command_process_is_execed_after_every_lock(
    layout: Layout, started: list[Sandboxed]
) -> None:
    out, err = _start(layout, "command", started).communicate(timeout=10)
    assert out is not None
    status = dict(line.split(":\t", 1) for line in out.decode().splitlines() if ":\t" in line)
    assert status["Name"] == "cat", err
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"
    assert status["CapEff"].strip() == "0000000000000000"
    assert status["CapBnd"].strip() == "0000000000000000"
