"""Nothing of a lab survives it: not on exit, error, Ctrl-C, SIGTERM, a failing test, or a
crash of its owner (the sweeper removes those, and only those)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from privsep.testing import Lab, sweep
from privsep.testing._ip import ip_json, list_netns
from privsep.testing._registry import REGISTRY_DIR
from privsep.testing._sweep import sweep_lock, sweep_locked

pytestmark = pytest.mark.lab


def _root_macs() -> set[str]:
    return {link.get("address", "") for link in ip_json("link", "show")}


def _running(pid: int) -> bool:
    """Alive and not a zombie (the orphans of a crashed owner are reaped by init later)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def _assert_gone(namespaces: tuple[str, ...], pids: list[int], tmpdir: Path, token: str) -> None:
    assert not set(namespaces) & set(list_netns())
    for pid in pids:
        assert not _running(pid), f"process {pid} survived"
    assert not tmpdir.exists()
    assert not (REGISTRY_DIR / f"{token}.json").exists()


def _populated(lab: Lab) -> list[int]:
    """A server, a client, a host, a running capture and a stray process; their pids."""
    client = lab.add_client()
    lab.add_host("bystander")
    server = lab.start_server("dnsmasq")
    lab.capture()
    sleeper = client.popen(["sleep", "600"])
    assert server.pid is not None
    return [server.pid, sleeper.pid]


def test_exit_leaves_no_namespace_process_interface_or_file() -> None:
    with Lab() as lab:
        pids = _populated(lab)
        names, tmpdir, token = lab.namespaces, lab.tmpdir, lab.token
        macs = {node.mac for node in lab.nodes}
        assert len(names) == 4 and set(names) <= set(list_netns())  # srv, void, client, host
        assert not macs & _root_macs()  # lab interfaces never live in the host namespace
    _assert_gone(names, pids, tmpdir, token)
    assert not macs & _root_macs()


def test_exception_in_the_body_still_tears_down() -> None:
    with pytest.raises(RuntimeError, match="test body failed"), Lab() as lab:
        pids = _populated(lab)
        names, tmpdir, token = lab.namespaces, lab.tmpdir, lab.token
        raise RuntimeError("test body failed")
    _assert_gone(names, pids, tmpdir, token)


def test_keyboard_interrupt_propagates_after_teardown() -> None:
    with pytest.raises(KeyboardInterrupt), Lab() as lab:
        pids = _populated(lab)
        names, tmpdir, token = lab.namespaces, lab.tmpdir, lab.token
        raise KeyboardInterrupt
    _assert_gone(names, pids, tmpdir, token)


def test_close_is_idempotent() -> None:
    lab = Lab()
    lab.close()  # never opened: nothing to do
    lab.open()
    names = lab.namespaces
    lab.close()
    lab.close()
    assert not set(names) & set(list_netns())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_lab_up_tears_down_on_signal(signum: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "privsep", "lab", "up", "--json", "--server", "kea"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        info = json.loads(proc.stdout.readline())
        names = (info["server"]["netns"], info["client"]["netns"])
        assert set(names) <= set(list_netns())
        assert _running(info["server"]["pid"])

        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate()

    assert proc.returncode == 0, stderr
    _assert_gone(names, [info["server"]["pid"]], Path(info["tmpdir"]), info["token"])


def test_a_failing_test_still_tears_down_its_lab(tmp_path: Path) -> None:
    record = tmp_path / "names.json"
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["privsep.testing.pytest_plugin"]\n')
    (tmp_path / "test_fails.py").write_text(
        textwrap.dedent(f"""
            import json

            def test_fails(kea_lab):
                state = {{"netns": list(kea_lab.namespaces), "tmpdir": str(kea_lab.tmpdir),
                         "token": kea_lab.token, "pid": kea_lab.server.pid}}
                open({str(record)!r}, "w").write(json.dumps(state))
                assert False, "this test fails on purpose"
        """)
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert "this test fails on purpose" in result.stdout
    state = json.loads(record.read_text())
    _assert_gone(tuple(state["netns"]), [state["pid"]], Path(state["tmpdir"]), state["token"])


_CRASHING_OWNER = """
import json, sys
from privsep.testing import Lab
lab = Lab().__enter__()
lab.add_client()
server = lab.start_server("dnsmasq")
lab.capture()
print(json.dumps({"token": lab.token, "netns": lab.namespaces, "tmpdir": str(lab.tmpdir),
                  "pid": server.pid}), flush=True)
sys.stdin.read()
"""


@dataclass(frozen=True)
class Leftover:
    token: str
    netns: tuple[str, ...]
    tmpdir: Path
    pid: int  # the lab's dnsmasq


def _leftover(line: str) -> Leftover:
    state = json.loads(line)
    return Leftover(state["token"], tuple(state["netns"]), Path(state["tmpdir"]), state["pid"])


def _owned_lab() -> tuple[subprocess.Popen[str], Leftover]:
    """A lab held by another live process, and what it made."""
    owner = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_OWNER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    return owner, _leftover(owner.stdout.readline())


def _crashed_lab() -> Leftover:
    """A lab whose owner died by SIGKILL mid-run: everything it made is still there."""
    owner, crashed = _owned_lab()
    owner.kill()
    owner.communicate()
    assert set(crashed.netns) <= set(list_netns())
    assert _running(crashed.pid)
    assert crashed.tmpdir.exists()
    return crashed


def _assert_swept(crashed: Leftover) -> None:
    _assert_gone(crashed.netns, [crashed.pid], crashed.tmpdir, crashed.token)


def test_sweep_removes_a_crashed_lab_and_spares_a_live_one(kea_lab: Lab) -> None:
    crashed = _crashed_lab()

    result = sweep()

    _assert_swept(crashed)  # (a concurrent test run's sweep may have done the work)
    # The live lab of this very process is untouched and still serves.
    assert kea_lab.token not in result.labs
    assert set(kea_lab.namespaces) <= set(list_netns())
    assert kea_lab.server.running
    kea_lab.client().udhcpc()


def test_sweep_reports_what_it_removed() -> None:
    with sweep_lock():  # keeps concurrent test runs from sweeping this leftover first
        crashed = _crashed_lab()
        result = sweep_locked(Path(tempfile.gettempdir()))

    assert crashed.token in result.labs
    assert set(crashed.netns) <= set(result.namespaces)
    assert crashed.pid in {pid for pid, _ in result.processes}
    assert crashed.tmpdir in result.directories
    _assert_swept(crashed)


def test_sweep_finds_leftovers_even_without_their_record() -> None:
    crashed = _crashed_lab()
    (REGISTRY_DIR / f"{crashed.token}.json").unlink()

    sweep()

    _assert_swept(crashed)


def test_sweep_never_touches_a_live_owner_in_another_process() -> None:
    owner, live = _owned_lab()
    try:
        result = sweep()
        assert live.token not in result.labs
        assert set(live.netns) <= set(list_netns())
        assert _running(live.pid)
    finally:
        owner.kill()
        owner.communicate()
        sweep()
    assert not set(live.netns) & set(list_netns())  # swept once its owner died


_FORKING_OWNER = """
import os, sys
from privsep.testing import Lab
with Lab() as lab:
    if os.fork() == 0:
        lab.close()
        sys.exit(0)  # runs atexit, which holds lab.close too
    os.wait()
    print(all(os.path.exists(f"/run/netns/{name}") for name in lab.namespaces))
"""


def test_a_forked_child_cannot_tear_down_its_parents_lab() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _FORKING_OWNER], capture_output=True, text=True, check=True
    )
    assert result.stdout == "True\n", result.stderr
