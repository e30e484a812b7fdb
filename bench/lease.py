"""DHCP client benchmark: privsep beside udhcpc, dhclient and dhcpcd, on the same warm
dnsmasq and Kea in the project's network lab.

    sudo .venv/bin/python bench/lease.py [--runs 5] [--servers dnsmasq,kea]
        [--clients udhcpc,dhclient,dhcpcd,privsep] [--no-arp] [--quick] [--json PATH]
        [--timeout SEC] [--privsep PATH]

Per server, per client variant: 1 warm-up run (excluded), then N runs, round-robin over
the variants so drifting machine load hits them alike. Each run starts from INIT (lease
files removed, address flushed). Times, all on the realtime clock:
- start: the wrapper's $EPOCHREALTIME just before it execs the client (under
  /usr/bin/time -v); `+harness` adds `ip netns exec` + bind mounts (peers) or bash
  (privsep), i.e. from our Popen;
- address: the first RTM_NEWADDR for the client's interface, from a netlink socket in
  its namespace (event-driven, like `ip monitor address`);
- first packet, ACK: kernel timestamps of a tcpdump capture on the lab bridge.
Memory: peak RSS from /usr/bin/time -v of the one-shot run (the largest single waited-for
process: dhclient's daemon child and processes nobody waits for are not in it), and one
daemon-mode run per client (no -q/-1) whose whole process tree is summed (Pss, Rss from
/proc/PID/smaps_rollup) 1 s after the address appeared.

Server conflict check: off (dnsmasq `no-ping` via ServerConfig(ping_check=False); Kea
has none), so no first allocation waits for a ping; the warm-up run is still excluded.
Targets (issue 5) for privsep, ARP probing off: start->address <= 2x dhclient's median,
ACK->address <= 10 ms, total PSS of its processes <= 60 MiB. Writes
bench/results/lease.json. Needs root.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("privsep") is None:  # a Python outside the venv: use the checkout
    sys.path.insert(0, str(ROOT / "src"))

import _lease_clients as clients  # noqa: E402
import _lease_probe as probe  # noqa: E402

from privsep.testing import Lab, Node, ServerError, ServerKind  # noqa: E402

RESULT = ROOT / "bench" / "results" / "lease.json"
MIB = 1024.0
TARGET_RATIO = 2.0
TARGET_ACK_MS = 10.0
TARGET_PSS_MIB = 60.0
SETTLE = 1.0  # daemon-mode snapshot: seconds after the address appeared
EXIT_GRACE = 5.0  # one-shot clients: how long to wait for their exit once configured
Json = dict[str, Any]


# ------------------------------------------------------------------ one run


def _tail(path: Path, lines: int = 3) -> str:
    with contextlib.suppress(OSError):
        text = path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])
    return ""


def _read_float(path: Path) -> float | None:
    with contextlib.suppress(OSError, ValueError):
        return float(path.read_text().strip())
    return None


def _max_rss(path: Path) -> int | None:
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            if "Maximum resident set size" in line:
                return int(line.rsplit(":", 1)[1])
    return None


def _ms(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round((b - a) * 1000.0, 3)


def _roles(log: Path) -> dict[int, str]:
    """pid -> layout process name, from the privsep supervisor's `start` log events."""
    roles = {}
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("event") == "start":
                    roles[int(event["pid"])] = str(event.get("child"))
    return roles


def _timeline(log: Path, t_exec: float | None) -> dict[str, float]:
    """First time (ms after exec) of each `process:event` in privsep's JSON log lines."""
    found: dict[str, float] = {}
    if t_exec is None:
        return found
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError, KeyError, TypeError):
                event = json.loads(line)
                label = f"{event['process']}:{event['event']}"
                found.setdefault(label, round((float(event["ts"]) - t_exec) * 1000.0, 1))
    return found


def _memory(pids: set[int], log: Path) -> Json:
    memory = probe.process_memory(pids)
    roles = _roles(log)
    # Top-level: started by us (or re-parented to us); the rest are their children,
    # e.g. privsep's sandboxed processes under its supervisor.
    children = [m for m in memory if m.ppid in pids]
    return {
        "processes": [
            {
                "pid": m.pid,
                "ppid": m.ppid,
                "name": roles.get(m.pid, m.name),
                "command": m.command,
                "rss_kib": m.rss_kib,
                "pss_kib": m.pss_kib,
            }
            for m in memory
        ],
        "pss_kib": sum(m.pss_kib for m in memory),
        "rss_kib": sum(m.rss_kib for m in memory),
        "children_pss_kib": sum(m.pss_kib for m in children),
    }


def one_run(
    lab: Lab,
    node: Node,
    files: clients.Files,
    variant: clients.Variant,
    *,
    tag: str,
    timeout: float,
    mode: clients.Mode = "oneshot",
) -> Json:
    """Start the client once; return the run's timings (or its error) as JSON."""
    files.reset()
    node.flush()
    stamp = files.directory / f"{tag}.stamp"
    log = files.directory / f"{tag}.log"
    for stale in (stamp, stamp.with_suffix(".time")):
        stale.unlink(missing_ok=True)
    argv = clients.command(variant, node, files, mode, stamp)
    env = {**os.environ, **node.hook_environment()}
    capture = lab.capture() if mode == "oneshot" else None
    before = probe.descendants()
    record: Json = {"tag": tag, "argv": argv}
    exited = False
    leftovers: list[int] = []
    proc: subprocess.Popen[bytes] | None = None
    with probe.AddressWatch(node.netns, node.interface) as watch, log.open("wb") as out:
        try:
            t_popen = time.time()
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
            # A daemonizing client's first process may exit before the address appears.
            found = watch.wait(time.monotonic() + timeout, proc if mode == "oneshot" else None)
            if mode == "daemon" and found is not None:
                time.sleep(SETTLE)  # let the client settle into its bound state
                record.update(_memory(probe.descendants() - before, log))
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(EXIT_GRACE if found is not None and mode == "oneshot" else 0.1)
            exited = proc.poll() is not None
        finally:  # also on Ctrl-C: no client process outlives its run
            if proc is not None and proc.poll() is None:
                proc.terminate()  # daemon mode, or a one-shot client that did not quit
                try:
                    proc.wait(2.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            leftovers = probe.stop_new_processes(before)
    t_exec = _read_float(stamp)
    record.update(
        exit_code=proc.returncode if exited and proc is not None else None,
        left_running=len(leftovers) + (0 if exited else 1),
        max_rss_kib=_max_rss(stamp.with_suffix(".time")),
    )
    if found is None:
        why = "no address" if exited else f"no address in {timeout} s"
        record["error"] = f"{why} (exit {record['exit_code']}): {_tail(log)}"
        if capture is not None:
            capture.stop()
        node.flush()
        return record
    if variant.family == "privsep" and mode == "oneshot":
        record["timeline_ms"] = _timeline(log, t_exec)
    t_addr, address = found
    t_first = t_ack = None
    if capture is not None:
        packets = probe.dhcp_packets(capture.dhcp_payloads(), node.mac)
        t_first, t_ack = probe.dhcp_phases(packets, t_addr)
        record["dhcp_messages"] = len(packets)
    node.flush()
    record.update(
        address=str(address),
        start_to_address_ms=_ms(t_exec, t_addr),
        with_harness_ms=_ms(t_popen, t_addr),
        start_to_first_packet_ms=_ms(t_exec, t_first),
        first_packet_to_ack_ms=_ms(t_first, t_ack),
        ack_to_address_ms=_ms(t_ack, t_addr),
    )
    return record


# ------------------------------------------------------------------ one server


def _median(runs: Sequence[Json], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 3) if values else None


def _status(variant: clients.Variant, run: Json) -> str:
    error = str(run.get("error", ""))
    if variant.family == "privsep" and run.get("exit_code") == 2:
        reason = error.split(": ", 1)[-1].removeprefix("error: ")
        return f"unavailable: {reason or 'exit 2'}"
    return f"failed: {error}"


def bench_server(
    lab: Lab,
    kind: ServerKind,
    variants: Sequence[clients.Variant],
    nodes: dict[str, tuple[Node, clients.Files]],
    *,
    runs: int,
    timeout: float,
) -> Json:
    try:
        lab.start_server(kind, lab.server_config(ping_check=False))
    except ServerError as exc:
        return {"error": f"{kind} did not start: {exc}"}
    results: Json = {}
    try:
        for table in (False, True):
            group = [v for v in variants if v.arp is table]
            status = {v.name: "ok" for v in group}
            measured: dict[str, list[Json]] = {v.name: [] for v in group}
            warmups: dict[str, Json] = {}
            for index in range(runs + 1):  # round 0 is the warm-up
                for v in group:
                    if status[v.name] != "ok":
                        continue
                    node, files = nodes[v.family]
                    tag = f"{kind}-{v.name.replace(' ', '')}-{index}"
                    run = one_run(lab, node, files, v, tag=tag, timeout=timeout)
                    if index == 0:
                        warmups[v.name] = run
                    else:
                        measured[v.name].append(run)
                    if "error" in run and index == 0:
                        status[v.name] = _status(v, run)
                    _progress(kind, v.name, index, run)
            for v in group:
                results[v.name] = _summary(v, status[v.name], warmups.get(v.name), measured[v.name])
        for v in variants:  # daemon-mode memory, one run per client without ARP probing
            entry = results[v.name]
            if v.arp or entry["status"] != "ok":
                continue
            node, files = nodes[v.family]
            tag = f"{kind}-{v.family}-daemon"
            snap = one_run(lab, node, files, v, tag=tag, timeout=timeout, mode="daemon")
            entry["daemon_command"] = " ".join(snap.pop("argv"))
            entry["daemon"] = snap
            _progress(kind, v.name, "daemon", snap)
    finally:
        lab.server.stop()
    _add_ratios(results)
    return {
        "conflict_check": "off (dnsmasq no-ping)" if kind == "dnsmasq" else "none (Kea has none)",
        "clients": results,
        "targets": _targets(results),
    }


def _summary(variant: clients.Variant, status: str, warmup: Json | None, runs: list[Json]) -> Json:
    good = [r for r in runs if "error" not in r]
    totals = [r["start_to_address_ms"] for r in good if r.get("start_to_address_ms") is not None]
    argv = (warmup or {}).get("argv") or []
    for run in [warmup, *runs]:
        if run is not None:
            run.pop("argv", None)
    entry: Json = {
        "family": variant.family,
        "arp_probe": variant.arp,
        "description": variant.description,
        "command": " ".join(argv),
        "status": status,
        "runs_ok": len(good),
        "runs_failed": len(runs) - len(good),
        "warmup": warmup,
        "runs": runs,
    }
    if status == "ok" and not good and runs:
        entry["status"] = f"failed: {runs[0].get('error', '')}"
    timelines = [r["timeline_ms"] for r in good if r.get("timeline_ms")]
    if timelines:  # labels seen in every run, by median time
        common = set.intersection(*(set(t) for t in timelines))
        medians = {k: round(statistics.median(t[k] for t in timelines), 1) for k in common}
        entry["median_timeline_ms"] = dict(sorted(medians.items(), key=lambda kv: kv[1]))
    if totals:
        entry.update(
            median_ms=round(statistics.median(totals), 3),
            min_ms=min(totals),
            max_ms=max(totals),
            median_with_harness_ms=_median(good, "with_harness_ms"),
            median_start_to_first_packet_ms=_median(good, "start_to_first_packet_ms"),
            median_first_packet_to_ack_ms=_median(good, "first_packet_to_ack_ms"),
            median_ack_to_address_ms=_median(good, "ack_to_address_ms"),
            median_max_rss_kib=_median(good, "max_rss_kib"),
        )
    return entry


# What any Python process of privsep costs before it does anything: the interpreter; the
# supervisor's event loop (asyncio, with ssl blocked as privsep blocks it); and pycapnp's
# import (it imports asyncio), which every process with an RPC channel needs.
_NO_SSL = "import sys; sys.modules['ssl'] = None; "
FLOOR_COMMANDS: dict[str, list[str]] = {
    "python": ["-S", "-E", "-c", "pass"],
    "python+asyncio": ["-c", _NO_SSL + "import asyncio"],
    "python+pycapnp": ["-c", _NO_SSL + "import capnp"],
}


def compile_bytecode(privsep: str) -> None:
    """Write privsep's bytecode before measuring: with PYTHONDONTWRITEBYTECODE set (or a
    read-only tree) stale .pyc files would be recompiled at every start (23 modules,
    27 ms under cProfile here)."""
    python = Path(privsep).with_name("python")
    if python.exists():
        code = (
            "import compileall, os, privsep; "
            "compileall.compile_dir(os.path.dirname(privsep.__file__), quiet=1)"
        )
        subprocess.run([str(python), "-c", code], check=True)


def measure_floor(privsep: str, runs: int) -> Json:
    """Medians of bare interpreter starts with the privsep venv's Python (no lab, no DHCP)."""
    python = Path(privsep).with_name("python")
    if not python.exists():
        return {"status": f"no {python}"}
    result: Json = {"status": "ok", "python": str(python)}
    for name, args in FLOOR_COMMANDS.items():
        samples = []
        for _ in range(max(runs, 5)):
            t0 = time.perf_counter()
            subprocess.run([str(python), *args], check=True)
            samples.append((time.perf_counter() - t0) * 1000)
        result[name] = round(statistics.median(samples), 1)
    return result


def _floor_line(floor: Json, servers: Json) -> str:
    if floor.get("status") != "ok":
        return f"floor: n/a ({floor.get('status')})"
    bases = [s["clients"].get("dhclient", {}).get("median_ms") for s in servers.values()]
    base = statistics.median([b for b in bases if b]) if any(bases) else None
    loop, capnp = floor.get("python+asyncio"), floor["python+pycapnp"]

    def ratio(ms: float) -> str:
        return f" ({ms / base:.2f} x dhclient's {base:.1f} ms)" if base else ""

    asyncio_part = f"python + import asyncio {loop:.1f} ms{ratio(loop)}; " if loop else ""
    return (
        f"floor (no DHCP, no sandbox): python -S -E start {floor['python']:.1f} ms; "
        f"{asyncio_part}python + import capnp {capnp:.1f} ms{ratio(capnp)}. The supervisor "
        "runs on asyncio and every process with an RPC channel needs pycapnp: no privsep "
        "start can be faster than these."
    )


def _add_ratios(results: Json) -> None:
    base = results.get("dhclient", {}).get("median_ms")
    for entry in results.values():
        median = entry.get("median_ms")
        entry["vs_dhclient"] = round(median / base, 3) if median and base else None


def _targets(results: Json) -> Json:
    privsep = results.get("privsep")
    if privsep is None:
        return {"status": "privsep not selected"}
    if privsep["status"] != "ok":
        return {"status": privsep["status"]}
    base = results.get("dhclient", {}).get("median_ms")
    median = privsep.get("median_ms")
    ack = privsep.get("median_ack_to_address_ms")
    daemon = privsep.get("daemon", {})
    pss = daemon.get("pss_kib")
    below = daemon.get("children_pss_kib")

    def check(value: float | None, limit: float | None) -> Json:
        verdict = None if value is None or limit is None else value <= limit
        return {"value": value, "limit": limit, "pass": verdict}

    return {
        "status": "ok",
        "start_to_address_ms": check(median, TARGET_RATIO * base if base else None),
        "ack_to_address_ms": check(ack, TARGET_ACK_MS),
        "total_pss_mib": check(round(pss / MIB, 2) if pss else None, TARGET_PSS_MIB),
        "processes": len(daemon.get("processes", [])),
        "sandboxed_pss_mib": round(below / MIB, 2) if below else None,
    }


def _progress(kind: str, name: str, index: int | str, run: Json) -> None:
    what = {0: "warm-up", "daemon": "daemon"}.get(index, f"run {index}")
    if "error" in run:
        result = run["error"][:120]
    elif index == "daemon":
        result = f"{len(run['processes'])} processes, PSS {run['pss_kib'] / MIB:.1f} MiB"
    else:
        result = _fmt(run.get("start_to_address_ms"))
    print(f"  {kind:8} {name:14} {what:8} {result}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ output


def _fmt(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.1f} ms"


def _mib(kib: float | None) -> str:
    return "-" if kib is None else f"{kib / MIB:.1f}"


def table(kind: str, version: str, server: Json, runs: int) -> str:
    if "error" in server:
        return f"== {kind} {version}: {server['error']}"
    head = (
        f"{'client':14} {'start→addr':>10} {'min..max':>19} {'xdhcl':>6} {'→1st pkt':>9}"
        f" {'→ACK':>8} {'ACK→addr':>9} {'+harness':>9} {'maxRSS':>7} {'procs':>5}"
        f" {'PSS':>6} {'RSS':>6}"
    )
    out = [
        f"== {kind} {version}: conflict check {server['conflict_check']};"
        f" median of {runs} run(s) after 1 warm-up; MiB for memory",
    ]
    for arp in (False, True):
        rows = [(n, e) for n, e in server["clients"].items() if e["arp_probe"] is arp]
        if not rows:
            continue
        out.append("-- ARP probing on" if arp else "-- ARP probing off")
        out.append(head)
        for name, e in rows:
            if e["status"] != "ok":
                out.append(f"{name:14} {e['status'][:110]}")
                continue
            daemon = e.get("daemon") or {}
            procs = len(daemon.get("processes", [])) if "processes" in daemon else None
            ratio = f"{e['vs_dhclient']:.2f}" if e.get("vs_dhclient") and not arp else "-"
            span = f"{_fmt(e.get('min_ms'))}..{_fmt(e.get('max_ms'))}"
            out.append(
                f"{name:14} {_fmt(e.get('median_ms')):>10} {span:>19} {ratio:>6}"
                f" {_fmt(e.get('median_start_to_first_packet_ms')):>9}"
                f" {_fmt(e.get('median_first_packet_to_ack_ms')):>8}"
                f" {_fmt(e.get('median_ack_to_address_ms')):>9}"
                f" {_fmt(e.get('median_with_harness_ms')):>9}"
                f" {_mib(e.get('median_max_rss_kib')):>7} {procs if procs is not None else '-':>5}"
                f" {_mib(daemon.get('pss_kib')):>6} {_mib(daemon.get('rss_kib')):>6}"
            )
    out.append(_target_line(server["targets"]))
    timeline = server["clients"].get("privsep", {}).get("median_timeline_ms")
    if timeline:
        steps = ", ".join(f"{label} {ms:.0f}" for label, ms in timeline.items())
        out.append(f"privsep log events (median ms after exec): {steps}")
    return "\n".join(out)


def _target_line(targets: Json) -> str:
    if targets.get("status") != "ok":
        return f"privsep targets: n/a ({targets.get('status')})"
    parts = []
    for key, label, unit in (
        ("start_to_address_ms", "start→address ≤ 2 x dhclient", "ms"),
        ("ack_to_address_ms", "ACK→address ≤ 10 ms", "ms"),
        ("total_pss_mib", "total PSS ≤ 60 MiB", "MiB"),
    ):
        t = targets[key]
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]
        limit = "-" if t["limit"] is None else f"{t['limit']:.1f}"
        value = "-" if t["value"] is None else f"{t['value']:.1f}"
        parts.append(f"{label}: {value} {unit} (limit {limit}) {verdict}")
    if targets.get("sandboxed_pss_mib") is not None:
        parts[-1] += (
            f" [{targets['processes']} processes; without the supervisor"
            f" {targets['sandboxed_pss_mib']:.1f} MiB]"
        )
    return "privsep targets: " + "; ".join(parts)


def _version(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (result.stdout + result.stderr).strip().splitlines()
    if not text:
        return "?"
    # "Dnsmasq version 2.90  Copyright ..." -> "2.90"; "dhcpcd 9.4.1" -> "9.4.1"
    words = text[0].replace("version", "").split()
    found = [w for w in words if w[:1].isdigit() or w.startswith("v1")]
    return found[0].rstrip(":") if found else text[0].strip()


def versions() -> dict[str, str]:
    return {
        "dnsmasq": _version(["dnsmasq", "--version"]),
        "kea": _version(["kea-dhcp4", "-V"]),
        "busybox": _version(["busybox"]),
        "dhclient": _version(["dhclient", "--version"]),
        "dhcpcd": _version(["dhcpcd", "--version"]),
        "kernel": platform.release(),
    }


# ------------------------------------------------------------------ main


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs (after 1 warm-up)")
    parser.add_argument("--servers", default="dnsmasq,kea", help="comma-separated: dnsmasq,kea")
    parser.add_argument("--clients", default=",".join(clients.FAMILIES), help="comma-separated")
    parser.add_argument("--no-arp", action="store_true", help="skip the ARP-probing table")
    parser.add_argument("--quick", action="store_true", help="1 run per variant (smoke test)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per run")
    parser.add_argument(
        "--privsep",
        default=clients.privsep_executable(),
        help="the privsep executable (default: the one beside this Python, else on PATH)",
    )
    parser.add_argument("--json", type=Path, default=RESULT, help=f"default {RESULT}")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 1
    args.servers = [s for s in args.servers.split(",") if s]
    args.clients = [c for c in args.clients.split(",") if c]
    for server in args.servers:
        if server not in ("dnsmasq", "kea"):
            parser.error(f"unknown server {server!r} (dnsmasq, kea)")
    for client in args.clients:
        if client not in clients.FAMILIES:
            parser.error(f"unknown client {client!r} ({', '.join(clients.FAMILIES)})")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if os.geteuid() != 0:
        print("error: bench/lease.py needs root (network namespaces)", file=sys.stderr)
        return 2
    probe.become_subreaper()  # a daemonizing client's children stay ours to measure and kill
    # SIGTERM unwinds like Ctrl-C: every run's `finally` and the lab's teardown still run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    variants = [
        v for v in clients.VARIANTS if v.family in args.clients and not (v.arp and args.no_arp)
    ]
    if "privsep" in args.clients:
        compile_bytecode(args.privsep)
    started = time.monotonic()
    report: Json = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"machine": platform.machine(), "cpus": os.cpu_count()},
        "versions": versions(),
        "runs": args.runs,
        "warmup_runs": 1,
        "method": {
            "start": "wrapper's $EPOCHREALTIME just before exec of the client (/usr/bin/time -v)",
            "address": "first RTM_NEWADDR on the client interface (netlink, event-driven)",
            "phases": "kernel timestamps of tcpdump on the lab bridge",
            "with_harness": "from Popen: + ip netns exec and bind mounts (peers), bash (privsep)",
            "max_rss": "/usr/bin/time -v of the one-shot run: largest waited-for process only",
            "daemon": f"sum of Pss/Rss over the client's whole process tree {SETTLE} s after bind",
            "conflict_check": "off: dnsmasq no-ping (ServerConfig(ping_check=False)), Kea none",
            "bytecode": "privsep's .pyc files written before the first run",
        },
        "servers": {},
    }
    with Lab() as lab:
        bench_dir = lab.tmpdir / "bench"
        bench_dir.mkdir()
        nodes: dict[str, tuple[Node, clients.Files]] = {}
        for family in dict.fromkeys(v.family for v in variants):
            node = lab.add_client(family)
            nodes[family] = (node, clients.Files(node.directory, Path(), Path(), args.privsep))
        dhclient_resolv = nodes["dhclient"][1].resolv_conf if "dhclient" in nodes else bench_dir
        wrapper, script = clients.install(bench_dir, dhclient_resolv)
        for family, (node, _) in nodes.items():
            nodes[family] = (node, clients.Files(node.directory, wrapper, script, args.privsep))
        for kind in args.servers:
            result = bench_server(lab, kind, variants, nodes, runs=args.runs, timeout=args.timeout)
            result["version"] = report["versions"][kind]
            report["servers"][kind] = result
    if "privsep" in args.clients:
        report["floor"] = measure_floor(args.privsep, args.runs)
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    for kind, server in report["servers"].items():
        print(table(kind, server["version"], server, args.runs))
        print()
    if "floor" in report:
        print(_floor_line(report["floor"], report["servers"]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json} ({report['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
