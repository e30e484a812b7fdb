"""`privsep dhcp -b`: udhcpc's background mode, against the real client in the lab.

The command must return 0 only once the address is on the interface (or after the first
leasefail), leave the client running in a session of its own, with the pid file naming
it, and never keep the caller's pipes open (a caller that captures output would hang).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from basic_helpers import Files, client_argv, events, make_files, run_client

from privsep.testing import Lab, Node

pytestmark = pytest.mark.lab


def _state(pid: int) -> str | None:
    """The process's state letter, or None when it is gone (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state = stat.rpartition(")")[2].split()[0]
    return None if state in ("Z", "X") else state


def _wait_gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _state(pid) is None:
            return True
        time.sleep(0.05)  # polling the kernel's view of the process
    return False


@contextlib.contextmanager
def _detached(pidfile: Path) -> Iterator[None]:
    """Whatever the test asserts, the detached client does not outlive it."""
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid):
                os.kill(pid, signal.SIGKILL)


def _run_background(node: Node, files: Files, pidfile: Path, *args: str) -> tuple[int, str, int]:
    """(exit status, stderr, the detached client's pid) of `privsep dhcp -b ...`, run
    with captured pipes: it only returns once the client let go of them."""
    result = run_client(node, files, "-b", "-p", str(pidfile), "--no-arp-probe", *args)
    pid = int(pidfile.read_text()) if pidfile.exists() else -1
    return result.returncode, result.stderr, pid


def test_background_returns_once_bound_and_the_client_keeps_the_lease(
    lab: Lab, tmp_path: Path
) -> None:
    lab.start_server("dnsmasq")
    node = lab.add_client()
    files = make_files(tmp_path)
    pidfile = tmp_path / "udhcpc.eth0.pid"
    with _detached(pidfile):
        code, stderr, pid = _run_background(node, files, pidfile, "-R")
        assert code == 0, stderr[-3000:]
        # Returned only once configured: the address is there already, not later.
        assert len(node.addresses()) == 1
        assert any(e.get("event") == "lease-applied" for e in events(stderr))
        # The pid file names the client that stays, in a session of its own.
        assert _state(pid) is not None
        assert os.getsid(pid) == pid
        assert str(Path(f"/proc/{pid}/fd/0").readlink()) == "/dev/null"
        # It holds the state dir's lock: a second client is refused.
        again = run_client(node, files, "-b", "--no-arp-probe")
        assert again.returncode == 2
        assert "in use by another privsep dhcp" in again.stderr
        # It still serves udhcpc's signals: SIGTERM with -R releases and deconfigures.
        os.kill(pid, signal.SIGTERM)
        assert _wait_gone(pid)
    assert node.addresses() == ()
    assert not pidfile.exists()


def test_background_without_a_server_returns_after_leasefail_and_keeps_trying(
    lab: Lab, tmp_path: Path
) -> None:
    node = lab.add_client()  # no DHCP server in this lab
    files = make_files(tmp_path)
    pidfile = tmp_path / "udhcpc.eth0.pid"
    log = files.root / "client.log"
    with _detached(pidfile), log.open("w") as stderr:
        # -b wins over -n (as in udhcpc: ifup passes both): 0, not 1.
        argv = client_argv(node, files, "-b", "-n", "-t", "1", "-T", "1", "-A", "1")
        argv += ["-p", str(pidfile), "--no-arp-probe"]
        code = subprocess.run(argv, stderr=stderr, timeout=30, check=False).returncode
        assert code == 0, log.read_text()[-3000:]
        pid = int(pidfile.read_text())
        assert _state(pid) is not None
        # stderr was a regular file: the detached client keeps logging there, and
        # tries again after -A (a second round of DISCOVERs, a second leasefail).
        deadline = time.monotonic() + 15
        while sum(e.get("event") == "leasefail" for e in events(log.read_text())) < 2:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            assert _state(pid) is not None, log.read_text()[-3000:]
            time.sleep(0.1)  # polling the client's log file


def test_background_with_a_bad_pidfile_fails_in_the_foreground(lab: Lab, tmp_path: Path) -> None:
    node = lab.add_client()
    files = make_files(tmp_path)
    pidfile = tmp_path / "no" / "such.pid"
    code, stderr, _ = _run_background(node, files, pidfile)
    assert code == 2
    assert stderr.strip().splitlines() == [f"error: -p {pidfile}: No such file or directory"]


def test_sweep_removes_only_the_interface_locks_nobody_holds(tmp_path: Path) -> None:
    # A client killed with SIGKILL runs no exit handler: its lock file stays until a
    # sweep (`privsep lab sweep`, and every test session's start) finds it unheld.
    from privsep._cli import _dhcp_checks

    token = secrets.token_hex(4)
    held_dir = _dhcp_checks._LOCK_DIR / f"netns-test-{token}-held"
    stale_dir = _dhcp_checks._LOCK_DIR / f"netns-test-{token}-stale"
    for directory in (held_dir, stale_dir):
        directory.mkdir(parents=True)
        (directory / "eth0.lock").touch()
    fd = os.open(held_dir / "eth0.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        removed = _dhcp_checks.sweep_stale_locks()
        assert stale_dir in removed and not stale_dir.exists()
        assert held_dir not in removed and (held_dir / "eth0.lock").exists()
    finally:
        os.close(fd)
        (held_dir / "eth0.lock").unlink(missing_ok=True)
        held_dir.rmdir()
