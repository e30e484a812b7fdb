"""`privsep probe` and `privsep shell` as a user runs them: a subprocess, exact output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox

LAYOUT = Path(__file__).parent / "layouts" / "probes.yaml"


def privsep(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0:
        pytest.skip("sandboxes need root")
    return subprocess.run(
        [sys.executable, "-m", "privsep", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_probe_relays_stdout_and_exit_status_exactly(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text("import sys\nsys.stdout.write('exact\\n  output')\nsys.exit(3)\n")
    result = privsep("probe", str(LAYOUT), "plain", str(script))
    assert result.returncode == 3
    assert result.stdout == "exact\n  output"


@pytest.mark.parametrize("mode", [[], ["--fork"]])
def test_probe_of_a_command_process_runs_the_script_in_that_sandbox(
    tmp_path: Path, mode: list[str]
) -> None:
    # Not the command: the script, relayed as for any process, with the command's grants
    # (execve is allowed to a `command:` process and to no entry process).
    layout = tmp_path / "cmd.yaml"
    layout.write_text(
        "service: t\nprocesses:\n  t:\n    command: [/bin/echo, from the command]\n"
        "    restart: never\n"
    )
    script = tmp_path / "probe.py"
    script.write_text(
        "import os, sys\n"
        "print('script', os.getpid())\n"
        "sys.stdout.flush()\n"
        "os.execv('/bin/sh', ['sh', '-c', 'echo exec $$; exit 7'])\n"
    )
    result = privsep("probe", str(layout), "t", str(script), *mode)
    assert result.returncode == 7, result.stderr
    assert result.stdout == "script 1\nexec 1\n"


@pytest.mark.parametrize("mode", [[], ["--fork"]])
def test_probe_sees_the_entry_imported_and_prepare_run_as_the_component_would(
    tmp_path: Path, mode: list[str]
) -> None:
    layout = Path(__file__).parent / "layouts" / "components.yaml"
    script = tmp_path / "probe.py"
    script.write_text(
        "import sys\n"
        "components = sys.modules['components']\n"
        "print(components._PREPARED, components._nnp())\n"
    )
    result = privsep("probe", str(layout), "prepared", str(script), *mode)
    assert result.returncode == 0, result.stderr
    # prepare ran before the locks (no_new_privs not yet set), the script after them.
    assert result.stdout == "{'nnp': '0'} 1\n"


@pytest.mark.skipif(not Path("/bin").is_symlink(), reason="needs a merged /usr (/bin -> usr/bin)")
def test_a_bind_of_a_replicated_symlink_dir_lands_where_it_points(tmp_path: Path) -> None:
    # A command process gets /bin as a symlink, like the host's: a bind of /bin too used
    # to fail at start (a mount point cannot replace the link).
    layout = tmp_path / "cmd.yaml"
    layout.write_text(
        "service: t\nprocesses:\n  t:\n    command: [/usr/bin/true]\n"
        "    binds: [/bin, /lib]\n    restart: never\n"
    )
    script = tmp_path / "probe.py"
    script.write_text(
        "import os\n"
        "print(os.path.islink('/bin'), os.path.exists('/bin/sh'), os.path.islink('/lib'))\n"
    )
    result = privsep("probe", str(layout), "t", str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "True True True\n"


def test_probe_of_an_unknown_process_is_a_one_line_error(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text("pass\n")
    result = privsep("probe", str(LAYOUT), "nobody", str(script))
    assert result.returncode == 2
    assert result.stderr.startswith("error: no process 'nobody'")
    assert len(result.stderr.splitlines()) == 1


def test_probe_script_exception_exits_1_with_its_traceback(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text("raise RuntimeError('from inside')\n")
    result = privsep("probe", str(LAYOUT), "plain", str(script))
    assert result.returncode == 1
    assert "RuntimeError: from inside" in result.stderr


def test_shell_runs_a_command_in_the_sandbox() -> None:
    result = privsep("shell", str(LAYOUT), "plain", "--", "/bin/sh", "-c", "id -u; echo $$; exit 4")
    assert result.returncode == 4
    uid, pid = result.stdout.split()
    assert 61184 <= int(uid) <= 65519
    assert pid == "1"


def test_shell_takes_set_after_the_process_as_probe_does(tmp_path: Path) -> None:
    for name in ("rw", "nolandlock", "ro"):
        (tmp_path / name).mkdir()
    data = tmp_path / "ro" / "x.txt"
    data.write_text("the overridden file\n")
    tmp_path.chmod(0o755)
    result = privsep(
        "shell", str(LAYOUT), "writer", "--set", f"state={tmp_path}", "--", "/bin/cat", str(data)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "the overridden file\n"


def test_shell_reads_commands_from_stdin() -> None:
    result = privsep("shell", str(LAYOUT), "plain", stdin="echo in-sandbox; cat /etc/shadow\n")
    assert result.stdout == "in-sandbox\n"
    assert result.returncode != 0
