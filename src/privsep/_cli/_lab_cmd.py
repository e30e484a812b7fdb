"""`privsep lab ...`: the network lab from the command line.

- `lab demo`: one throw-away lab with a real dnsmasq; `privsep dhcp` leases on the lab
  interface; prints the lease and what each process holds, then stops it.
- `lab up`: a lab with a server and a client that stays until Ctrl-C or SIGTERM.
- `lab sweep`: remove leftovers of crashed lab runs.

Every command tears its lab down on success, failure, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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
        "demo", help="run `privsep dhcp` against dnsmasq and Kea inside a throw-away lab"
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
    from privsep.testing._lab import lab_unavailable_reason  # noqa: PLC0415 - keep --help fast

    reason = lab_unavailable_reason()
    if reason is not None:
        raise CliError(reason, code=1)


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


def _privsep(*args: str) -> list[str]:
    return [sys.executable, "-m", "privsep", *args]


def _events(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            out.append(item)
    return out


def _live_privileges(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each running sandboxed process holds, read from /proc (not from the layout)."""
    rows = []
    for event in events:
        if event.get("process") != "supervisor" or event.get("event") != "start":
            continue
        pid = int(event["pid"])
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        rows.append(
            {
                "process": event["child"],
                "pid": pid,
                "uid": int(fields["Uid"].split()[0]),
                "cap_eff": fields["CapEff"].strip(),
                "no_new_privs": fields["NoNewPrivs"].strip() == "1",
                "seccomp": fields["Seccomp"].strip() == "2",
                "fds": event.get("fds", []),
            }
        )
    return rows


def _wait_for(path: Path, event: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(e.get("event") == event for e in _events(path)):
            return True
        time.sleep(0.02)
    return False


def _run_client(lab: Lab, client: Node, kind: str) -> dict[str, Any]:
    """`privsep dhcp` on the lab client's interface until bound, then SIGTERM."""
    work = lab.tmpdir / f"privsep-dhcp-{kind}"
    work.mkdir(mode=0o755)
    resolv = work / "resolv.conf"
    resolv.touch()
    log = work / "client.log"
    argv = _privsep(
        "dhcp", client.interface, "--netns", client.netns, "--no-arp-probe",
        "--state-dir", str(work / "state"), "--resolv-conf", str(resolv),
    )  # fmt: skip
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        bound = _wait_for(log, "lease-applied", proc, 30.0)
        elapsed = time.monotonic() - started
        if not bound:
            tail = log.read_text().splitlines()[-5:]
            raise CliError(f"privsep dhcp got no lease from {kind}: " + " | ".join(tail))
        events = _events(log)
        privileges = _live_privileges(events)
        lease = next(e for e in events if e.get("event") == "lease")
        text = resolv.read_text()
        block = {
            "server": kind,
            "address": [str(a) for a in client.addresses()],
            "router": [str(g) for g in client.default_gateways()],
            "dns": [line.split()[1] for line in text.splitlines() if line.startswith("nameserver")],
            "lease_time": lease.get("lease_time"),
            "time_to_lease_ms": round(elapsed * 1000, 1),
            "processes": privileges,
        }
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    block["exit_status"] = code
    return block


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
                results.append(_run_client(lab, client, kind))
                server.stop()
                client.flush()
                if not args.json:
                    _print_block(results[-1])
            if not args.json:
                _print_inspect(client)
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
    print("  running processes, read from /proc:")
    print(f"    {'PROCESS':<14} {'UID':>6}  {'CAPS (CapEff)':<17} NNP  SECCOMP  FDS")
    for row in result["processes"]:
        caps = "-" if int(row["cap_eff"], 16) == 0 else _cap_names(int(row["cap_eff"], 16))
        print(
            f"    {row['process']:<14} {row['uid']:>6}  {caps:<17} "
            f"{'yes' if row['no_new_privs'] else 'NO':<4} {'yes' if row['seccomp'] else 'NO':<8} "
            f"{','.join(row['fds'])}"
        )
    print(f"  privsep dhcp stopped with SIGTERM: exit status {result['exit_status']}")
    sys.stdout.flush()


def _print_inspect(client: Node) -> None:
    print("what the layout grants each process (privsep inspect):")
    layout = subprocess.run(
        _privsep("dhcp", "--layout"), capture_output=True, text=True, check=True
    ).stdout.strip()
    inspect = subprocess.run(
        _privsep(
            "inspect",
            layout,
            "--set",
            f"interface={client.interface}",
            "--set",
            f"netns={client.netns}",
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    for line in inspect.stdout.splitlines():
        print(f"  {line}")
    sys.stdout.flush()


def _cap_names(mask: int) -> str:
    names = {12: "CAP_NET_ADMIN", 13: "CAP_NET_RAW", 21: "CAP_SYS_ADMIN"}
    return ",".join(names.get(bit, f"cap{bit}") for bit in range(64) if mask >> bit & 1)


def _up(args: argparse.Namespace) -> int:
    _require_lab()
    from privsep.testing import Lab, LabError  # noqa: PLC0415 - keep `privsep --help` fast

    try:
        with _signals_unwind(), Lab(args.network) as lab:
            lab.add_client()
            lab.start_server(args.server)
            _print_up(lab, args.json)
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


def _print_up(lab: Lab, as_json: bool) -> None:
    client = lab.client()
    server_pid = lab.server.pid
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
