"""`privsep dhcp`: the DHCPv4 client and its tools.

- `privsep dhcp IFACE [options]` (or `-i IFACE`): the privilege-separated
  client, udhcpc-compatible where udhcpc has the option. It loads the layout
  `privsep/services/dhcp/layout.yaml` with parameters built from the options
  and runs it under the supervisor in this process (foreground, SIGTERM stops).
  Exit status: 0 (stopped, or bound with `-q`), 1 (no lease with `-n`, a lease
  that could not be configured with `-q`, or a process gave up), 2 (bad options).
  With `-b` the command returns 0 once bound (or after the first leasefail) and
  the client goes on detached (`_detach`).
  SIGUSR1 renews at once, SIGUSR2 releases (udhcpc's signals, forwarded to
  dhcp-engine).
- `privsep dhcp --layout` prints the layout's path.
- `privsep dhcp decode [--hex]` decodes one message from stdin.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from privsep._cli import CliError, _dhcp_checks
from privsep._cli._dhcp_options import option_code, parse_extra

_USAGE = (
    "privsep dhcp IFACE [options]  (or -i IFACE)\n"
    "       privsep dhcp --layout\n"
    "       privsep dhcp decode [--hex]"
)

_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

EXIT_BOUND = 70  # mirrors privsep.services.dhcp._proc_engine (not imported: start-up time)
EXIT_NO_LEASE = 71
EXIT_NOT_APPLIED = 72


def layout_path() -> Path:
    import privsep.services.dhcp  # noqa: PLC0415

    return Path(privsep.services.dhcp.__file__).with_name("layout.yaml")


# When set (privsep's pytest plugin sets it), `privsep dhcp` refuses to run without --netns.
REQUIRE_NETNS_ENV = "PRIVSEP_REQUIRE_NETNS"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # prefix_chars="+": every argument after `dhcp` lands in `rest`, parsed below,
    # so udhcpc's short options (-q, -i eth0, ...) reach our own parser.
    parser = subparsers.add_parser(
        "dhcp",
        help="the DHCPv4 client (udhcpc-compatible); `dhcp decode` decodes a message",
        description="DHCPv4 client (udhcpc-compatible) and tools.",
        usage=_USAGE,
        prefix_chars="+",
        add_help=False,
    )
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(func=_dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    return run(args.rest)


def run(rest: list[str]) -> int:
    """`privsep dhcp REST...` (the dispatcher calls this directly: start-up time)."""
    if rest[:1] == ["decode"]:
        return _decode(rest[1:])
    return _client(rest)


def _seconds(text: str) -> float:
    """A finite, non-negative number of seconds (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"not a finite, non-negative number: {text!r}")
    return value


def _text(text: str) -> str:
    """A non-empty UTF-8 string (argparse type): an empty --resolv-conf, --state-dir or
    --netns must not quietly mean the host's default (a wrapper's unset variable)."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"not UTF-8: {text!r}") from None
    return text


def _tries(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1: {text!r}")
    return value


def _interval(text: str) -> float:
    """-T: at least 0.1 s (a DISCOVER storm helps no one; udhcpc takes whole seconds)."""
    value = _seconds(text)
    if value < 0.1:
        raise argparse.ArgumentTypeError(f"at least 0.1 seconds: {text!r}")
    return value


def _client_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="privsep dhcp",
        usage=_USAGE,
        description=(
            "Privilege-separated DHCPv4 client: dhcp-network (packet socket), dhcp-engine "
            "(protocol, no privileges), dhcp-actuator (CAP_NET_ADMIN), dhcp-resolv "
            "(resolv.conf), dhcp-hook (-s). "
            "Runs in the foreground, keeping the lease, until SIGTERM."
        ),
    )
    p.add_argument(
        "interface", nargs="?", type=_text, metavar="IFACE", help="the interface to configure"
    )
    p.add_argument(
        "-i", "--interface", dest="iface_opt", type=_text, metavar="IFACE", help="same as IFACE"
    )
    p.add_argument("--layout", action="store_true", help="print the layout's path and exit")
    p.add_argument("-f", "--foreground", action="store_true", help="run in the foreground (always)")
    p.add_argument("-q", "--quit", action="store_true", help="exit once the lease is configured")
    p.add_argument("-n", "--now", action="store_true", help="exit with status 1 if no lease")
    p.add_argument(
        "-t",
        "--retries",
        type=_tries,
        metavar="N",
        help="DISCOVERs before leasefail (forever; 3 with -n)",
    )
    p.add_argument(
        "-T",
        "--timeout",
        type=_interval,
        metavar="SEC",
        help="pause between DISCOVERs (4..64 s; 3 with -n)",
    )
    p.add_argument(
        "-A", "--tryagain", type=_seconds, metavar="SEC", help="wait after leasefail (20)"
    )
    p.add_argument(
        "-s", "--script", type=_text, metavar="SCRIPT", help="hook script (udhcpc events)"
    )
    p.add_argument(
        "-x", dest="extra", action="append", default=[], metavar="OPT:VAL", help="extra option"
    )
    p.add_argument(
        "-O", dest="request", action="append", default=[], metavar="OPT", help="request option"
    )
    p.add_argument(
        "-V", "--vendorclass", type=_text, metavar="VENDOR", help="vendor class (option 60)"
    )
    p.add_argument(
        "-r", "--request", dest="requested", type=_text, metavar="IP", help="request this address"
    )
    p.add_argument("-R", "--release", action="store_true", help="release the lease on exit")
    p.add_argument(
        "-a",
        dest="arp_probe",
        action="store_const",
        const=True,
        default=argparse.SUPPRESS,  # --arp-probe's default (on) stands
        help="udhcpc: ARP check (= --arp-probe; the last of the two wins)",
    )
    p.add_argument(
        "-C", "--clientid-none", action="store_true", help="send no client identifier (option 61)"
    )
    p.add_argument(
        "-o",
        "--no-default-options",
        action="store_true",
        help="ask only for the -O options (no option 55 without any)",
    )
    p.add_argument(
        "-F", "--fqdn", metavar="NAME", help="ask the server to update DNS for NAME (option 81)"
    )
    p.add_argument(
        "-H",
        "--hostname",
        dest="hostname_opt",
        type=_text,
        metavar="NAME",
        help="= -x hostname:NAME",
    )
    p.add_argument(
        "-p", "--pidfile", type=_text, metavar="FILE", help="write our pid to FILE while running"
    )
    p.add_argument(
        "-b",
        "--background",
        action="store_true",
        help="go to the background once bound, or after the first leasefail (wins over -n)",
    )
    p.add_argument("--netns", type=_text, metavar="NAME", help="the interface's network namespace")
    p.add_argument("--state-dir", type=_text, metavar="DIR", help="state directory")
    p.add_argument(
        "--resolv-conf", type=_text, metavar="PATH", help="resolv.conf target, or `none`"
    )
    p.add_argument(
        "--arp-probe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="RFC 5227 conflict detection before using an address (default: on)",
    )
    p.add_argument(
        "--stop-timeout", type=_seconds, default=5.0, metavar="SEC", help=argparse.SUPPRESS
    )
    return p


def _fqdn_option(name: str) -> bytes:
    """Option 81 as udhcpc's -F sends it (RFC 4702): flags S (server updates A and PTR),
    the two deprecated rcodes, and the name in ASCII."""
    labels = name.rstrip(".").split(".")
    if not name or len(name) > 252 or not all(_LABEL.fullmatch(label) for label in labels):
        raise CliError(f"-F {name!r}: not a DNS name", code=2)
    return b"\x01\x00\x00" + name.encode("ascii")


def _parameters(opts: argparse.Namespace, interface: str) -> dict[str, str]:
    import ipaddress  # noqa: PLC0415

    hostname, extra = parse_extra(opts.extra)
    hostname = opts.hostname_opt or hostname
    if opts.fqdn is not None:
        extra.append(f"81:{_fqdn_option(opts.fqdn).hex()}")
    if opts.requested:
        try:
            ipaddress.IPv4Address(opts.requested)
        except ValueError:
            raise CliError(f"-r {opts.requested}: not an IPv4 address", code=2) from None
    tag = f"{opts.netns}-{interface}" if opts.netns else interface
    state_dir = Path(opts.state_dir or f"/var/lib/privsep/dhcp/{tag}").absolute()
    resolv_conf = opts.resolv_conf or "/etc/resolv.conf"
    if resolv_conf == "none":
        resolv_dir = str(state_dir)
    else:
        resolv_conf = str(Path(resolv_conf).absolute())
        resolv_dir = str(Path(resolv_conf).parent)
    params = {
        "interface": interface,
        "netns": opts.netns,
        "state_dir": str(state_dir),
        "resolv_conf": resolv_conf,
        "resolv_dir": resolv_dir,
        "quit": "1" if opts.quit else "0",
        "exit_no_lease": "1" if opts.now and not opts.background else "0",
        "release": "1" if opts.release else "0",
        "arp_probe": "1" if opts.arp_probe else "0",
        "hostname": hostname,
        "vendor": opts.vendorclass or "",
        "requested": opts.requested or "",
        "request_options": ",".join(str(option_code(o)) for o in opts.request),
        "client_id_mode": "none" if opts.clientid_none else "rfc4361",
        "default_options": "0" if opts.no_default_options else "1",
        "extra_options": ",".join(extra),
    }
    # Without -t we retry forever with RFC 2131's backoff (4, 8, ... 64 s). With -n or -b,
    # udhcpc's defaults (-t 3 -T 3) apply, so "no lease" comes as soon as udhcpc's does.
    udhcpc_rounds = opts.now or opts.background
    retries = opts.retries if opts.retries is not None else (3 if udhcpc_rounds else None)
    timeout = opts.timeout if opts.timeout is not None else (3.0 if udhcpc_rounds else None)
    if retries is not None:
        params["tries"] = str(max(1, retries))
    if timeout is not None:
        params["interval"] = str(timeout)
    if opts.tryagain is not None:
        params["failure_pause"] = str(opts.tryagain)
    if opts.script:
        script = Path(opts.script).absolute()
        _dhcp_checks.check_script(script)
        params["hook"] = str(script)
    return params


def _check_config(params: dict[str, str]) -> None:
    """Refuse bad values now rather than let dhcp-engine fail at every restart."""
    from privsep.services.dhcp._clientparams import config_from_params  # noqa: PLC0415

    try:
        config_from_params(params, b"\x02\x00\x00\x00\x00\x01")
    except ValueError as exc:
        raise CliError(f"bad option: {exc}", code=2) from None


def _prepare_dirs(params: dict[str, str]) -> int:
    """Create the state dir and lock it for this client's life; returns the lock's fd."""
    if params["resolv_conf"] != "none":
        if not Path(params["resolv_dir"]).is_dir():
            raise CliError(f"--resolv-conf: no directory {params['resolv_dir']}", code=2)
        if Path(params["resolv_conf"]).is_dir():
            raise CliError(f"--resolv-conf {params['resolv_conf']}: is a directory", code=2)
    state = Path(params["state_dir"])
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(state, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileExistsError:
        raise CliError(f"--state-dir {state}: not a directory", code=2) from None
    except OSError as exc:
        raise CliError(f"--state-dir {state}: {exc.strerror or exc}", code=2) from None
    # Two clients on one state dir (ifup run twice, say) would fight over the interface
    # and the lease records: the second one is refused. The sandboxes close this fd;
    # the lock lives as long as the supervisor (or the -b client that forks from it).
    import fcntl  # noqa: PLC0415

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise CliError(
            f"--state-dir {state}: in use by another privsep dhcp (one client per interface)",
            code=2,
        ) from None
    return fd


def _without(layout: Any, name: str) -> Any:
    """The layout minus process `name` and the channels to it (dhcp-hook without -s,
    dhcp-resolv with --resolv-conf none)."""
    import dataclasses  # noqa: PLC0415

    processes = []
    for process in layout.processes:
        if process.name == name:
            continue
        channels = tuple(c for c in process.channels if c.peer != name)
        processes.append(dataclasses.replace(process, channels=channels))
    return dataclasses.replace(layout, processes=tuple(processes))


def _on_exit(name: str, returncode: int) -> int | None:
    if name == "dhcp-engine" and returncode == EXIT_BOUND:
        return 0
    if name == "dhcp-engine" and returncode in (EXIT_NO_LEASE, EXIT_NOT_APPLIED):
        return 1
    return None


def _client(argv: list[str]) -> int:
    opts = _client_parser().parse_args(argv)
    opts.netns = opts.netns or ""  # none given: the current namespace (an empty one is refused)
    if opts.layout:
        print(layout_path())
        return 0
    interface = opts.iface_opt or opts.interface
    if not interface:
        raise CliError("no interface (privsep dhcp IFACE [options])", code=2)
    if opts.interface and opts.iface_opt and opts.interface != opts.iface_opt:
        raise CliError("two different interfaces given", code=2)
    # The kernel's rule (dev_valid_name): 1..15 bytes, no '/', ':' or whitespace.
    if (
        len(interface.encode()) > 15
        or interface in (".", "..")
        or any(c in "/:" or c.isspace() for c in interface)
    ):
        raise CliError(f"bad interface name {interface!r}", code=2)
    if not opts.netns and os.environ.get(REQUIRE_NETNS_ENV):
        # Set by privsep's pytest plugin: a test must never configure the host's own network.
        raise CliError(f"refusing to run on the host's network: {REQUIRE_NETNS_ENV} is set", code=2)
    if opts.netns:
        _dhcp_checks.check_netns_name(opts.netns)
        if os.environ.get(REQUIRE_NETNS_ENV) and _dhcp_checks.is_own_netns(opts.netns):
            raise CliError(
                f"refusing to run on the host's network: --netns {opts.netns} is this "
                f"process's own namespace and {REQUIRE_NETNS_ENV} is set",
                code=2,
            )
    _dhcp_checks.check_interface(opts.netns, interface)
    params = _parameters(opts, interface)
    _check_config(params)
    if opts.pidfile:
        _dhcp_checks.check_pidfile_dir(Path(opts.pidfile).absolute())
    # Both locks are held until we exit (the sandboxes do not inherit them).
    _dhcp_checks.lock_interface(opts.netns, interface)
    _prepare_dirs(params)
    on_event = None
    if opts.background:
        from privsep._cli import _detach  # noqa: PLC0415

        on_event = _detach_when_settled(_detach.start())  # the caller waits there

    # Start-up time is a benchmark here: the layout is parsed on the other core while
    # this process imports the supervisor (see privsep.layout._background).
    from privsep.layout import _background  # noqa: PLC0415

    pending = _background.start(layout_path(), params)
    # The supervisor speaks no TLS: keep asyncio from loading libssl (~1.5 MiB, ~5 ms).
    sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]
    # Still while the child parses: the supervisor, and what it would import next anyway
    # (the launcher, and every process's code for the fork start). Measured: 6-8 ms off
    # the median in two of three interleaved A/B runs of 15-20 starts, a tie in the third.
    import privsep.sandbox._resources  # noqa: PLC0415
    import privsep.sandbox._spawn  # noqa: F401, PLC0415
    from privsep import _log  # noqa: PLC0415
    from privsep._errors import LayoutError  # noqa: PLC0415
    from privsep.services.dhcp import _proc  # noqa: PLC0415
    from privsep.supervisor import Supervisor  # noqa: PLC0415

    unused = {"dhcp-hook"} if not opts.script else set()
    if params["resolv_conf"] == "none":
        unused.add("dhcp-resolv")
    for name in _proc.PROCESS_MODULES.keys() - unused:
        _proc.preload(name)
    try:
        layout = pending.result()
    except LayoutError as exc:
        raise CliError("; ".join(exc.problems), code=2) from None
    for name in sorted(unused):
        layout = _without(layout, name)
    _log.configure("supervisor")
    # fork: children start from this process's imports (see privsep.sandbox.spawn).
    supervisor = Supervisor(
        layout, stop_timeout=opts.stop_timeout, on_exit=_on_exit, on_event=on_event, fork=True
    )
    pidfile = _write_pidfile(Path(opts.pidfile)) if opts.pidfile else None
    try:
        return _run(supervisor)
    finally:
        if pidfile is not None:
            _remove_pidfile(pidfile)


# -b: the caller may go once the address is on the interface, or once the first round
# of DISCOVERs failed (udhcpc: "no lease, forking to background").
_SETTLED = frozenset({("dhcp-actuator", "lease-applied"), ("dhcp-engine", "leasefail")})


def _detach_when_settled(detacher: Any) -> Any:
    def on_event(process: str, event: Any) -> None:
        if (process, event.get("event")) in _SETTLED:
            detacher.detach()

    return on_event


def _write_pidfile(path: Path) -> Path:
    """udhcpc's -p: our pid (the supervisor's, which SIGTERM/SIGUSR1/SIGUSR2 go to)."""
    path = path.absolute()
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        tmp.write_text(f"{os.getpid()}\n")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CliError(f"-p {path}: {exc.strerror or exc}", code=2) from None
    return path


def _remove_pidfile(path: Path) -> None:
    """Remove it unless someone else's pid is in it by now."""
    try:
        if path.read_text().strip() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass


def _run(supervisor: Any) -> int:
    """Supervise; udhcpc's SIGUSR1 (renew) and SIGUSR2 (release) go to dhcp-engine.
    SIGHUP (the terminal went away) stops the client as SIGTERM does: cleanly, with
    the release of `-R`, rather than by the default action."""
    import asyncio  # noqa: PLC0415
    import signal  # noqa: PLC0415

    from privsep._log import get_logger, log_event  # noqa: PLC0415

    def hangup() -> None:
        log_event(get_logger("privsep.supervisor"), "signal", signal="SIGHUP")
        supervisor.stop()

    async def body() -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGUSR1, signal.SIGUSR2):
            loop.add_signal_handler(signum, supervisor.signal_child, "dhcp-engine", signum)
        loop.add_signal_handler(signal.SIGHUP, hangup)
        try:
            code: int = await supervisor.run_async()
        finally:
            for signum in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
                loop.remove_signal_handler(signum)
        return code

    return asyncio.run(body())


def _decode(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="privsep dhcp decode",
        description=(
            "Decode one BOOTP/DHCP message (a UDP payload) from stdin and print it as JSON."
        ),
    )
    parser.add_argument(
        "--hex", action="store_true", help="stdin is hex text (whitespace allowed), not binary"
    )
    opts = parser.parse_args(argv)

    import json  # noqa: PLC0415  # keep `privsep --help` fast

    from privsep._errors import MalformedPacket  # noqa: PLC0415
    from privsep.services.dhcp._decode_json import message_to_json  # noqa: PLC0415
    from privsep.services.dhcp._message import decode_message  # noqa: PLC0415

    data = sys.stdin.buffer.read()
    if opts.hex:
        try:
            data = bytes.fromhex("".join(data.decode("ascii").split()))
        except ValueError:  # UnicodeDecodeError is a ValueError too
            raise CliError("stdin is not hex text", code=2) from None
    try:
        message = decode_message(data)
    except MalformedPacket as exc:
        raise CliError(f"malformed DHCP message: {exc}", code=2) from None
    json.dump(message_to_json(message), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
