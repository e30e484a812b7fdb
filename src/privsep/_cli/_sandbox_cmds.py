"""`privsep probe` and `privsep shell`: look at a process's sandbox from the inside.

probe: runs a Python script as `__main__` in the process's exact final
sandbox (same launch path as the component, after every lock), with the
process's resources opened and one socketpair per channel (the peer ends are
held open, unserved); relays the script's stdout and exit status.

shell: runs a command (default /bin/sh) in almost that sandbox; the
differences (execve allowed, executable dirs bound, any ioctl) are listed in
docs/sandbox.md.
"""

# ruff: noqa: PLC0415 - heavy modules load inside the commands (privsep._cli)

from __future__ import annotations

import argparse
import os
import sys

from privsep._cli import CliError, add_layout_arguments


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    probe = subparsers.add_parser(
        "probe",
        help="run a Python script inside a process's final sandbox",
        description="Run SCRIPT as __main__ inside PROCESS's exact final sandbox "
        "(after every lock); relay its stdout and exit status.",
    )
    add_layout_arguments(probe)
    probe.add_argument("process", metavar="PROCESS")
    probe.add_argument("script", metavar="SCRIPT.py")
    probe.add_argument(
        "--fork",
        action="store_true",
        help="start the process by fork without exec, as `privsep dhcp` does "
        "(default: through the exec helper)",
    )
    probe.set_defaults(func=_probe)

    shell = subparsers.add_parser(
        "shell",
        help="run a command in (almost) a process's sandbox, for debugging",
        description="Run CMD (default /bin/sh) in PROCESS's sandbox, with execve "
        "allowed and the executable directories bound (see docs/sandbox.md).",
    )
    add_layout_arguments(shell)
    shell.add_argument("process", metavar="PROCESS")
    shell.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    shell.set_defaults(func=_shell)


def _exit_code(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 - returncode


def _run(args: argparse.Namespace, *, script: str | None, argv: list[str] | None) -> int:
    import socket
    import subprocess

    from privsep.layout import load_layout, parse_set
    from privsep.sandbox import spawn
    from privsep.sandbox._resources import open_resources

    layout = load_layout(args.layout, parse_set(args.overrides))
    try:
        process = layout.process(args.process)
    except KeyError:
        names = ", ".join(p.name for p in layout.processes)
        message = f"no process {args.process!r} in {args.layout} (processes: {names})"
        raise CliError(message) from None
    fds = open_resources(process)
    peers: list[socket.socket] = []
    ends: list[socket.socket] = []
    try:
        for channel in process.channels:
            end, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            ends.append(end)
            peers.append(peer)  # held open, unserved: the probe sees a live channel
            fds[channel.name] = end.fileno()
        sys.stdout.flush()
        sys.stderr.flush()
        stdin = None if argv else subprocess.DEVNULL  # a shell reads the terminal
        sandboxed = spawn(
            process,
            fds,
            layout=layout,
            script=script,
            argv=argv,
            stdin=stdin,
            fork=getattr(args, "fork", False),
        )
        for end in ends:
            end.close()
        try:
            return _exit_code(sandboxed.wait())
        except KeyboardInterrupt:
            return _exit_code(sandboxed.wait())
    finally:
        for name, fd in fds.items():
            if name not in {c.name for c in process.channels}:
                os.close(fd)
        for sock in (*ends, *peers):
            sock.close()


def _probe(args: argparse.Namespace) -> int:
    from pathlib import Path

    if not Path(args.script).is_file():
        raise CliError(f"no script {args.script}")
    return _run(args, script=args.script, argv=None)


def _shell(args: argparse.Namespace) -> int:
    command = list(args.command)
    # `--set K=V` may follow PROCESS (as with probe); the command starts at `--` or at
    # the first other word, and everything after it is the command's.
    while command[:1] == ["--set"] or (command[:1] and command[0].startswith("--set=")):
        if command[0] == "--set":
            if len(command) < 2:
                raise CliError("--set needs KEY=VALUE")
            args.overrides.append(command[1])
            command = command[2:]
        else:
            args.overrides.append(command[0].removeprefix("--set="))
            command = command[1:]
    if command and command[0] == "--":
        command = command[1:]
    return _run(args, script=None, argv=command or ["/bin/sh"])
