"""`privsep run LAYOUT [--set KEY=VALUE ...]`: run a layout in the foreground.

The supervisor's own events and every process's output go to stderr as JSON
lines; SIGTERM or SIGINT stops every process and exits 0. Exits 1 when a
required process gives up, 2 for an invalid layout.
"""

from __future__ import annotations

import argparse

from privsep._cli import add_layout_arguments


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a layout in the foreground under the supervisor",
        description=(
            "Start every process of LAYOUT in its sandbox, restart them per policy, "
            "and log as JSON lines on stderr. SIGTERM/SIGINT stops cleanly."
        ),
    )
    add_layout_arguments(parser)
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="wait this long after SIGTERM before SIGKILL when stopping a process (default 5)",
    )
    parser.add_argument(
        "--fork",
        action="store_true",
        help="import every process's code here once, then start processes by fork "
        "without exec (faster, less memory; see docs/sandbox.md for what it gives up)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from privsep import _log  # noqa: PLC0415  # keep `privsep --help` fast
    from privsep.layout import load_layout, parse_set  # noqa: PLC0415
    from privsep.supervisor import Supervisor  # noqa: PLC0415

    layout = load_layout(args.layout, parse_set(args.overrides))
    _log.configure("supervisor")
    return Supervisor(layout, stop_timeout=args.stop_timeout, fork=args.fork).run()
