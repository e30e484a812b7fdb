"""The command line's shared behaviour: help, and one-line errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from privsep._cli import CliError, main

COUNTER_LAYOUT = Path(__file__).resolve().parents[1] / "examples" / "counter" / "layout.yaml"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "privsep", *args], capture_output=True, text=True, check=False
    )


def test_help_lists_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "COMMAND" in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_cli_error_prints_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    def failing(_: argparse.Namespace) -> int:
        raise CliError("broken on purpose", code=3)

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=failing)
    monkeypatch.setattr("privsep._cli.build_parser", lambda: parser)
    assert main([]) == 3
    assert capsys.readouterr().err == "error: broken on purpose\n"


def test_closed_stdout_gives_no_traceback() -> None:
    # `privsep inspect --json | head`: the reader is gone before we write.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "privsep", "inspect", "--json", str(COUNTER_LAYOUT)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 141
    assert "Traceback" not in result.stderr
