"""The hook runner: hostile values stay inert data, the environment is exact, hangs are killed."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from privsep._log import JsonFormatter
from privsep.services.dhcp._hookenv import HookEnvError, HookEvent
from privsep.services.dhcp._hookrun import DEFAULT_PATH, MAX_LINES, build_environment, run_hook


def write_script(path: Path, body: str, shell: str = "/bin/sh") -> Path:
    path.write_text(f"#!{shell}\n" + body)
    path.chmod(0o755)
    return path


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing privsep's JSON lines into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("dhcp-hook"))
    logger = logging.getLogger("privsep.test.hookrun")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.handlers.clear()


def log_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


HOSTILE = [
    "$(touch {dir}/pwned-subst)",
    "`touch {dir}/pwned-backtick`",
    "x; touch {dir}/pwned-semicolon",
    "x' ; touch {dir}/pwned-squote ; '",
    'x" ; touch {dir}/pwned-dquote ; "',
    "x\ntouch {dir}/pwned-newline\n",
    "() { :; }; /bin/touch {dir}/pwned-shellshock",
    "x && touch {dir}/pwned-and | touch {dir}/pwned-pipe > {dir}/pwned-redirect",
    "-rf --help $PATH ${IFS} * ? [a] ~ \\ \t end",
]


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
@pytest.mark.parametrize("template", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_reach_the_script_as_inert_bytes(
    tmp_path: Path, template: str, shell: str
) -> None:
    value = template.replace("{dir}", str(tmp_path))
    out = tmp_path / "hostname.out"
    script = write_script(
        tmp_path / "hook",
        f"printf '%s' \"$hostname\" > '{out}'\nprintf '%s' \"$1\" > '{out}.event'\n",
        shell,
    )
    # Also as a variable whose name bash would once have imported as a function.
    env = {"interface": "eth0", "hostname": value, "domain": value}
    result = run_hook(script, HookEvent.BOUND, env)
    assert result.ok, result
    assert out.read_bytes() == value.encode()
    assert (tmp_path / "hostname.out.event").read_text() == "bound"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("pwned")) == []


def test_environment_is_exactly_the_built_variables_plus_path(tmp_path: Path) -> None:
    out = tmp_path / "environ"
    script = write_script(
        tmp_path / "hook",
        f"cat /proc/$$/environ > '{out}'\n"
        f"printf '%s|%s|%s' \"$0\" \"$1\" \"$#\" > '{out}.argv'\npwd > '{out}.cwd'\n",
    )
    env = {"interface": "eth0", "ip": "10.0.0.5", "opt53": "05", "message": "a b\tc"}
    os.environ["PRIVSEP_SHOULD_NOT_LEAK"] = "1"
    try:
        result = run_hook(script, HookEvent.RENEW, env)
    finally:
        del os.environ["PRIVSEP_SHOULD_NOT_LEAK"]
    assert result.ok
    entries = [e for e in out.read_bytes().split(b"\x00") if e]
    seen = dict(e.decode().split("=", 1) for e in entries)
    assert seen == {**env, "PATH": DEFAULT_PATH}
    assert (tmp_path / "environ.argv").read_text() == f"{script}|renew|1"
    assert (tmp_path / "environ.cwd").read_text() == "/\n"


def test_stdin_is_dev_null(tmp_path: Path) -> None:
    script = write_script(tmp_path / "hook", f"cat > '{tmp_path}/stdin'\n")
    result = run_hook(script, HookEvent.DECONFIG, {"interface": "eth0"}, timeout=5)
    assert result.ok and not result.timed_out
    assert (tmp_path / "stdin").read_bytes() == b""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_timeout_kills_the_hanging_script_and_its_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = write_script(tmp_path / "hook", f"sleep 60 &\necho $! > '{pidfile}'\nsleep 60\n")
    started = time.monotonic()
    result = run_hook(script, HookEvent.BOUND, {"interface": "eth0"}, timeout=0.5)
    assert time.monotonic() - started < 3
    assert result.timed_out and not result.ok
    assert result.returncode == -signal.SIGKILL
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(child), "the script's background child survived the timeout"


def test_a_daemon_left_holding_stdout_does_not_hold_the_runner(tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    script = write_script(tmp_path / "hook", f"sleep 30 &\necho $! > '{pidfile}'\necho done\n")
    started = time.monotonic()
    result = run_hook(script, HookEvent.BOUND, {"interface": "eth0"}, timeout=10)
    try:
        assert time.monotonic() - started < 2
        assert result.ok and result.stdout == b"done\n"
    finally:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the sleep this test started


def test_exit_status_and_output_are_logged_as_json_lines(
    tmp_path: Path, json_log: tuple[logging.Logger, io.StringIO]
) -> None:
    logger, stream = json_log
    script = write_script(tmp_path / "hook", "echo configured eth0\necho oops >&2\nexit 3\n")
    result = run_hook(script, HookEvent.BOUND, {"interface": "eth0"}, logger=logger)
    assert (result.returncode, result.stdout, result.stderr) == (3, b"configured eth0\n", b"oops\n")
    lines = log_lines(stream)
    assert [(d["event"], d.get("stream"), d.get("line")) for d in lines] == [
        ("hook_output", "stdout", "configured eth0"),
        ("hook_output", "stderr", "oops"),
        ("hook_exit", None, None),
    ]
    assert lines[-1]["returncode"] == 3
    assert lines[-1]["hook_event"] == "bound"
    assert lines[-1]["process"] == "dhcp-hook"


def test_output_is_bounded(tmp_path: Path, json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    script = write_script(
        tmp_path / "hook",
        "i=0\nwhile [ $i -lt 300 ]; do printf '%0500d\\n' 0; i=$((i+1)); done\n"
        "head -c 5000 /dev/zero | tr '\\0' x\n",
    )
    result = run_hook(
        script, HookEvent.BOUND, {"interface": "eth0"}, max_output=4096, max_line=100, logger=logger
    )
    assert result.ok and result.truncated
    assert len(result.stdout) + len(result.stderr) == 4096
    lines = log_lines(stream)
    outputs = [d for d in lines if d["event"] == "hook_output"]
    assert all(len(str(d["line"])) <= 100 for d in outputs)
    assert outputs[0]["line_truncated"] is True
    assert lines[-1]["output_truncated"] is True


def test_a_script_without_a_shebang_runs_with_bin_sh_as_udhcpc_runs_it(tmp_path: Path) -> None:
    script = tmp_path / "hook"
    script.write_text('echo "event $1"\n')  # no #! line: execve says ENOEXEC
    script.chmod(0o755)
    result = run_hook(script, HookEvent.BOUND, {"interface": "eth0"})
    assert result.returncode == 0, result
    assert result.stdout == b"event bound\n"


def test_many_short_lines_are_logged_up_to_the_line_cap(
    tmp_path: Path, json_log: tuple[logging.Logger, io.StringIO]
) -> None:
    # 64 KiB of "y\n" would be 32768 log lines per event: capped, with a count.
    logger, stream = json_log
    script = write_script(tmp_path / "hook", "yes | head -c 20000\necho err >&2\n")
    result = run_hook(script, HookEvent.BOUND, {"interface": "eth0"}, logger=logger)
    assert result.ok
    lines = log_lines(stream)
    outputs = [d for d in lines if d["event"] == "hook_output"]
    assert len(outputs) == MAX_LINES
    (skipped,) = [d for d in lines if d["event"] == "hook_output_skipped"]
    assert skipped["lines"] == 10000 + 1 - MAX_LINES  # stderr's line is left out too
    assert lines[-1]["event"] == "hook_exit"


def test_nul_in_a_value_is_rejected_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = write_script(tmp_path / "hook", f"touch '{marker}'\n")
    with pytest.raises(HookEnvError, match="NUL"):
        run_hook(script, HookEvent.BOUND, {"interface": "eth0", "hostname": "a\x00b"})
    assert not marker.exists()


@pytest.mark.parametrize("name", ["", "1x", "a=b", "a b", "PATH", "x\x00"])
def test_bad_variable_names_are_rejected(name: str) -> None:
    with pytest.raises(HookEnvError):
        build_environment({name: "v"})


def test_non_utf8_values_reach_the_script_byte_exact(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = write_script(tmp_path / "hook", f"printf '%s' \"$rootpath\" > '{out}'\n")
    value = os.fsdecode(b"/srv/\xff\xfe")
    assert run_hook(script, HookEvent.BOUND, {"rootpath": value}).ok
    assert out.read_bytes() == b"/srv/\xff\xfe"


@pytest.mark.parametrize("kind", ["missing", "not_executable"])
def test_a_script_that_cannot_start_is_reported_not_raised(
    tmp_path: Path, kind: str, json_log: tuple[logging.Logger, io.StringIO]
) -> None:
    logger, stream = json_log
    script = tmp_path / "hook"
    if kind == "not_executable":
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o644)
    result = run_hook(script, HookEvent.LEASEFAIL, {"interface": "eth0"}, logger=logger)
    assert result.returncode is None and result.error and not result.ok
    assert log_lines(stream)[-1]["event"] == "hook_failed"
