"""The example service runs as documented: a client calls a server across two sandboxes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox

EXAMPLE = Path(__file__).parents[2] / "examples" / "counter"


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


@pytest.mark.parametrize("start", ["exec", "fork"])
def test_example_client_calls_server_across_sandboxes(start: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("sandboxes need root")
    # A client slow enough (5 calls, 0.1 s apart) to look at both processes while they run.
    argv = [sys.executable, "-m", "privsep", "run", str(EXAMPLE / "layout.yaml")]
    argv += ["--set", "increments=5", "--set", "delay=0.1"]
    argv += ["--fork"] if start == "fork" else []
    events: list[dict[str, object]] = []
    seen: dict[int, tuple[dict[str, str], str]] = {}  # component pid -> (status, pid ns)
    with subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) as proc:
        try:
            reader = threading.Thread(
                target=lambda: events.extend(json.loads(line) for line in proc.stderr or ()),
                daemon=True,
            )
            reader.start()
            deadline = time.monotonic() + 20
            while len(seen) < 2 and time.monotonic() < deadline and proc.poll() is None:
                spawned = _children(proc.pid)
                for pid in spawned + [c for p in spawned for c in _children(p)]:
                    try:
                        status = _status(pid)
                        pid_ns = str(Path(f"/proc/{pid}/ns/pid").readlink())
                    except FileNotFoundError:
                        continue
                    locked = status.get("Seccomp", "").strip() == "2"
                    if locked and status["NSpid"].split()[-1] == "1":  # the component
                        seen[pid] = (status, pid_ns)
                time.sleep(0.01)
            assert proc.wait(30) == 0
            reader.join(5)
        finally:
            if proc.poll() is None:
                proc.kill()
    result = [e for e in events if e.get("event") == "result"]
    assert len(result) == 1
    assert result[0]["process"] == "counter-client"
    assert result[0]["value"] == 5
    assert len(seen) == 2, "both processes were seen fully locked while running"
    for status, _ in seen.values():
        assert status["NoNewPrivs"].strip() == "1"
        assert status["Seccomp"].strip() == "2"
        assert status["CapEff"].strip() == "0000000000000000"
        assert status["Uid"].split()[0] != "0"
        assert status["NSpid"].split()[-1] == "1"  # pid 1 of its own pid namespace
    pid_namespaces = {pid_ns for _, pid_ns in seen.values()}
    assert str(Path("/proc/self/ns/pid").readlink()) not in pid_namespaces
    assert len(pid_namespaces) == 2  # one each
    exits = [e for e in events if e.get("event") == "exit"]
    assert sorted((e["child"], e["code"]) for e in exits) == [
        ("counter-client", 0),
        ("counter-server", 0),
    ]
