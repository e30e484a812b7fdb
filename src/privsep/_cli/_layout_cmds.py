"""`privsep check` and `privsep inspect`: validate a layout, show what each process holds."""

from __future__ import annotations

import argparse
import json

from privsep._cli import add_layout_arguments


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = subparsers.add_parser(
        "check",
        help="validate a layout (exit 2 with one file:line: message per problem)",
        description="Validate LAYOUT. Exit 0 when valid; else exit 2 and print one "
        "'file:line: message' line per problem on stderr.",
    )
    add_layout_arguments(check)
    check.set_defaults(func=_check)

    inspect = subparsers.add_parser(
        "inspect",
        help="show what each process of a layout is granted",
        description="Show, per process in start order: uid, capabilities, new namespaces, "
        "seccomp, landlock rules, fds and exposure.",
    )
    add_layout_arguments(inspect)
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")
    inspect.set_defaults(func=_inspect)


def _check(args: argparse.Namespace) -> int:
    from privsep.layout import load_layout, parse_set  # noqa: PLC0415

    layout = load_layout(args.layout, parse_set(args.overrides), check_schemas=True)
    count = len(layout.processes)
    print(f"{args.layout}: ok ({layout.service}: {count} process{'es' if count != 1 else ''})")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from privsep.layout import load_layout, parse_set  # noqa: PLC0415
    from privsep.layout._inspect import inspect_layout, table  # noqa: PLC0415

    layout = load_layout(args.layout, parse_set(args.overrides), check_schemas=True)
    report = inspect_layout(layout)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(table(report, layout))
    return 0
