"""The `privsep` command line: a thin dispatcher over one module per command group.

Each command module exposes `register(subparsers)`, which adds its sub-commands
and sets `func` on them. Modules import their heavy dependencies inside the
command functions, so `privsep --help` and quick commands stay fast.

Errors: a command raises `CliError` (or any `PrivsepError`) and the dispatcher
prints one `error: ...` line to stderr and exits with its code (2 by default);
no traceback reaches the user for anticipated failures.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from privsep._errors import LayoutError, PrivsepError

# Command modules, in the order their commands appear in `privsep --help`.
_COMMAND_MODULES = (
    "privsep._cli._layout_cmds",  # check, inspect
    "privsep._cli._run_cmds",  # run
    "privsep._cli._sandbox_cmds",  # probe, shell
    "privsep._cli._dhcp_cmd",  # dhcp
    "privsep._cli._lab_cmd",  # lab
)


class CliError(PrivsepError):
    """A user-facing failure: printed as one line, exit code `code`."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def add_layout_arguments(parser: argparse.ArgumentParser) -> None:
    """The LAYOUT positional and the repeatable `--set KEY=VALUE` every layout command takes."""
    parser.add_argument("layout", metavar="LAYOUT", help="the layout file (YAML)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a layout parameter (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="privsep",
        description=(
            "Run Linux system services as small, privilege-separated processes "
            "declared by a YAML layout."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a command group not built yet
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["dhcp"]:
        # The DHCP client's start-up time is benchmarked: skip building every
        # command's parser (the dhcp parser above only collects the rest anyway).
        from privsep._cli import _dhcp_cmd  # noqa: PLC0415

        return _guarded(lambda: _dhcp_cmd.run(args_list[1:]))
    parser = build_parser()
    args = parser.parse_args(args_list)
    return _guarded(lambda: args.func(args))


def _guarded(command: Callable[[], int | None]) -> int:
    """Run `command`; anticipated failures become one `error:` line and an exit code."""
    try:
        result = command()
    except LayoutError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except PrivsepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`privsep inspect --json | head`): not worth a traceback.
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141
    return int(result or 0)
