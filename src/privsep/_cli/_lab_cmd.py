"""`privsep lab ...`: the network lab from the command line.

- `lab demo`: one throw-away lab; busybox udhcpc leases from dnsmasq, then from Kea.
- `lab up`: a lab with a server and a client that stays until Ctrl-C or SIGTERM.
- `lab sweep`: remove leftovers of crashed lab runs.

Every command tears its lab down on success, failure, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

from privsep._cli import CliError

if TYPE_CHECKING:
    from privsep.testing import Lab, Node, ServerKind

_KINDS = ("dnsmasq", "kea", "dhcpd", "udhcpd")


def register(subparsers: Any) -> None:
    lab = subparsers.add_parser("lab", help="throw-away network lab with real DHCP servers")
    commands = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND", required=True)

    demo = commands.add_parser(
        "demo", help="lease an address from dnsmasq and Kea inside a throw-away lab"
    )
    demo.add_argument(
        "--servers",
        default="dnsmasq,kea",
        help=f"comma-separated server kinds to try, in order ({', '.join(_KINDS)})",
    )
    demo.add_argument("--network", default="10.77.0.1/24", help="server address/prefix")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.set_defaults(func=_demo)

    up = commands.add_parser("up", help="build a lab and keep it until Ctrl-C or SIGTERM")
    up.add_argument("--server", choices=_KINDS, default="dnsmasq")
    up.add_argument("--network", default="10.77.0.1/24", help="server address/prefix")
    up.add_argument("--json", action="store_true", help="print the lab's names as JSON")
    up.set_defaults(func=_up)

    sweep = commands.add_parser("sweep", help="remove leftovers of crashed lab runs")
    sweep.add_argument("--json", action="store_true", help="print one JSON object")
    sweep.set_defaults(func=_sweep)


def _require_lab() -> None:
    if os.geteuid() != 0:
        raise CliError("the network lab needs root (it creates network namespaces)", code=1)
    if shutil.which("ip") is None:
        raise CliError("the network lab needs iproute2's `ip`", code=1)


@contextmanager
def _signals_unwind() -> Iterator[None]:
    """SIGTERM raises SystemExit(143) and SIGINT KeyboardInterrupt, so `with Lab()`
    unwinds and tears down. SIGINT too, even when inherited as ignored (a background
    job of a script): a lab must never be left to `kill -9`."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous_term = signal.signal(signal.SIGTERM, handler)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def _parse_kinds(text: str) -> list[ServerKind]:
    kinds = [kind.strip() for kind in text.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in _KINDS]
    if unknown or not kinds:
        raise CliError(
            f"unknown server kind {', '.join(unknown) or '(none)'}; known: {', '.join(_KINDS)}"
        )
    return kinds  # type: ignore[return-value]


def _lease_block(kind: str, client: Node, elapsed: float) -> dict[str, Any]:
    env = client.hook_env()
    resolv = client.resolv_conf.read_text() if client.resolv_conf.exists() else ""
    return {
        "server": kind,
        "address": [str(a) for a in client.addresses()],
        "router": [str(g) for g in client.default_gateways()],
        "dns": [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver")],
        "lease_time": int(env["lease"]) if env.get("lease", "").isdigit() else None,
        "time_to_lease_ms": round(elapsed * 1000, 1),
    }


def _demo(args: argparse.Namespace) -> int:
    kinds = _parse_kinds(args.servers)
    _require_lab()
    from privsep.testing import Lab, LabError  # noqa: PLC0415 - keep `privsep --help` fast

    results = []
    try:
        with _signals_unwind(), Lab(args.network) as lab:
            client = lab.add_client()
            for kind in kinds:
                server = lab.start_server(kind)
                run = client.udhcpc()
                if not client.addresses():
                    raise CliError(f"udhcpc reported a lease from {kind}, but eth0 has no address")
                results.append(_lease_block(kind, client, run.elapsed))
                server.stop()
                client.flush()
                if not args.json:
                    _print_block(results[-1])
    except (LabError, ValueError) as exc:
        raise CliError(str(exc), code=1) from exc
    if args.json:
        print(json.dumps({"results": results}, indent=2))
    return 0


def _print_block(result: dict[str, Any]) -> None:
    lease = f"{result['lease_time']} s" if result["lease_time"] is not None else "?"
    print(f"{result['server']}: leased in {result['time_to_lease_ms']:.0f} ms")
    print(f"  address  {', '.join(result['address']) or '-'}")
    print(f"  router   {', '.join(result['router']) or '-'}")
    print(f"  dns      {', '.join(result['dns']) or '-'}")
    print(f"  lease    {lease}")
    sys.stdout.flush()


def _up(args: argparse.Namespace) -> int:
    _require_lab()
    from privsep.testing import Lab, LabError  # noqa: PLC0415 - keep `privsep --help` fast

    try:
        with _signals_unwind(), Lab(args.network) as lab:
            lab.add_client()
            server = lab.start_server(args.server)
            _print_up(lab, args.json, server.pid)
            signal.pause()  # until Ctrl-C (KeyboardInterrupt) or SIGTERM (SystemExit)
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:
        if exc.code != 128 + signal.SIGTERM:
            raise
    except (LabError, ValueError) as exc:
        raise CliError(str(exc), code=1) from exc
    print("lab torn down", file=sys.stderr)
    return 0


def _print_up(lab: Lab, as_json: bool, server_pid: int | None) -> None:
    client = lab.client()
    info = {
        "token": lab.token,
        "tmpdir": str(lab.tmpdir),
        "server": {
            "kind": lab.server.kind,
            "pid": server_pid,
            "netns": lab.server_node.netns,
            "interface": lab.server_node.interface,
            "address": str(lab.server_address),
        },
        "client": {"netns": client.netns, "interface": client.interface, "mac": client.mac},
        "hook": str(client.hook_script),
    }
    if as_json:
        print(json.dumps(info))
    else:
        print(f"lab {info['token']} is up (Ctrl-C or SIGTERM tears it down)")
        print(
            f"  server  {lab.server.kind} pid {server_pid} on {lab.server_node.interface} "
            f"{lab.server_address} in netns {lab.server_node.netns}"
        )
        print(f"  client  {client.interface} ({client.mac}) in netns {client.netns}")
        env = " ".join(f"{key}={value}" for key, value in client.hook_environment().items())
        print(
            f"  try     {env} ip netns exec {client.netns} busybox udhcpc -f -q"
            f" -i {client.interface} -s {client.hook_script}"
        )
    sys.stdout.flush()


def _sweep(args: argparse.Namespace) -> int:
    _require_lab()
    from privsep.testing import sweep  # noqa: PLC0415 - keep `privsep --help` fast

    result = sweep()
    if args.json:
        print(
            json.dumps(
                {
                    "labs": list(result.labs),
                    "namespaces": list(result.namespaces),
                    "processes": [{"pid": pid, "name": name} for pid, name in result.processes],
                    "directories": [str(d) for d in result.directories],
                }
            )
        )
        return 0
    if not result:
        print("nothing to sweep")
        return 0
    for name in result.namespaces:
        print(f"removed netns {name}")
    for pid, name in result.processes:
        print(f"killed process {pid} ({name})")
    for directory in result.directories:
        print(f"removed {directory}")
    print(f"swept {len(result.labs)} lab(s)")
    return 0
