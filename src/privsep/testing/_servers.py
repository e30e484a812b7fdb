"""Real DHCP servers in a lab node: configuration, start with a readiness check, leases.

One `ServerConfig` describes what to hand out; each server kind renders it into its own
configuration language. Every server listens on the node's lab interface only and keeps
all its files (config, lease database, pid file, log) in its own directory under the
lab's temp dir. Readiness is observed, never slept for: the server's own UDP :67 socket
(dnsmasq, udhcpd) or its "started" log line (Kea with raw sockets, ISC dhcpd).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING, Literal, final, get_args

from privsep._log import get_logger, log_event
from privsep.testing._errors import LabError, ServerError

if TYPE_CHECKING:
    from privsep.testing._node import Node

ServerKind = Literal["dnsmasq", "kea", "dhcpd", "udhcpd"]
SERVER_KINDS: tuple[ServerKind, ...] = get_args(ServerKind)

_logger = get_logger(__name__)
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 3.0
_DEFAULT_SUBNET = IPv4Network("10.77.0.0/24")
_DEFAULT_SERVER = IPv4Address("10.77.0.1")
_DEFAULT_POOL = (IPv4Address("10.77.0.100"), IPv4Address("10.77.0.200"))


@final
@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What a lab DHCP server hands out. Defaults fit `Lab()`'s default 10.77.0.0/24
    segment; `Lab.server_config(...)` fills in the lab's own subnet.

    `lease_time`, `renew_time` (T1, option 58) and `rebind_time` (T2, option 59) are
    seconds; dnsmasq refuses leases under 120 s, udhcpd and Kea take a few seconds.
    `static_routes` is option 121 (destination, router). `ping_check` turns on the
    server's conflict check before a first offer (dnsmasq/dhcpd ping, udhcpd ARP; Kea has
    none); it costs 1-3 s per new address, so the lab turns it off by default.
    """

    subnet: IPv4Network = _DEFAULT_SUBNET
    pool: tuple[IPv4Address, IPv4Address] = _DEFAULT_POOL
    routers: tuple[IPv4Address, ...] = (_DEFAULT_SERVER,)
    dns_servers: tuple[IPv4Address, ...] = (_DEFAULT_SERVER,)
    domain: str | None = None
    search: tuple[str, ...] = ()
    mtu: int | None = None
    lease_time: int = 120
    renew_time: int | None = None
    rebind_time: int | None = None
    static_routes: tuple[tuple[IPv4Network, IPv4Address], ...] = ()
    ping_check: bool = False
    authoritative: bool = True

    def __post_init__(self) -> None:
        first, last = self.pool
        if not (first in self.subnet and last in self.subnet and first <= last):
            raise LabError(f"pool {first}-{last} is not a range inside {self.subnet}")
        if self.lease_time < 1:
            raise LabError("lease_time must be at least 1 s")
        if self.mtu is not None and not 68 <= self.mtu <= 65535:
            raise LabError(f"mtu {self.mtu} is out of range")

    @property
    def netmask(self) -> IPv4Address:
        return self.subnet.netmask

    def with_changes(self, **changes: object) -> ServerConfig:
        """A copy with some fields replaced (dataclasses.replace)."""
        return replace(self, **changes)  # type: ignore[arg-type]


@final
@dataclass(frozen=True, slots=True)
class Lease:
    """One active lease from a server's lease database."""

    address: IPv4Address
    mac: str  # lowercase aa:bb:cc:dd:ee:ff ("" if the server did not record one)
    expires: float | None  # Unix time; None for infinite
    hostname: str | None = None
    client_id: str | None = None


@dataclass(slots=True)
class _Files:
    directory: Path
    config: Path
    leases: Path
    pidfile: Path
    log: Path


@dataclass(slots=True)
class _Plan:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_log: str | None = None  # a line that says the server serves
    ready_udp67: bool = False  # the server's own UDP :67 socket exists
    ready_packet: bool = False  # the server's own packet socket exists (raw sockets)
    fail_log: str | None = None  # a line that says it will never serve


# ---------------------------------------------------------------- rendering per kind


def _addresses(items: tuple[IPv4Address, ...]) -> str:
    return ",".join(str(a) for a in items)


def _route_bytes(routes: tuple[tuple[IPv4Network, IPv4Address], ...]) -> bytes:
    """Option 121 payload (RFC 3442): width, significant octets, router."""
    out = bytearray()
    for dest, router in routes:
        out.append(dest.prefixlen)
        out += dest.network_address.packed[: math.ceil(dest.prefixlen / 8)]
        out += router.packed
    return bytes(out)


def _dnsmasq(cfg: ServerConfig, iface: str, local: IPv4Address | None, files: _Files) -> _Plan:
    if cfg.lease_time < 120:
        raise ServerError(f"dnsmasq's minimum lease time is 120 s, not {cfg.lease_time}")
    lines = [
        "port=0",  # DHCP only, no DNS
        f"interface={iface}",
        "bind-interfaces",
        "except-interface=lo",
        "no-resolv",
        "no-hosts",
        "log-dhcp",
        "log-facility=-",
        f"dhcp-leasefile={files.leases}",
        f"pid-file={files.pidfile}",
        f"dhcp-range={cfg.pool[0]},{cfg.pool[1]},{cfg.netmask},{cfg.lease_time}",
        # An empty option suppresses dnsmasq's default of offering itself.
        f"dhcp-option=option:router{',' if cfg.routers else ''}{_addresses(cfg.routers)}",
        f"dhcp-option=option:dns-server{',' if cfg.dns_servers else ''}"
        f"{_addresses(cfg.dns_servers)}",
    ]
    if cfg.authoritative:
        lines.append("dhcp-authoritative")
    if not cfg.ping_check:
        lines.append("no-ping")
    if cfg.domain:
        lines.append(f"dhcp-option=option:domain-name,{cfg.domain}")
    if cfg.search:
        lines.append(f"dhcp-option=option:domain-search,{','.join(cfg.search)}")
    if cfg.mtu is not None:
        lines.append(f"dhcp-option=option:mtu,{cfg.mtu}")
    if cfg.renew_time is not None:
        lines.append(f"dhcp-option=option:T1,{cfg.renew_time}")
    if cfg.rebind_time is not None:
        lines.append(f"dhcp-option=option:T2,{cfg.rebind_time}")
    if cfg.static_routes:
        routes = ",".join(f"{dest},{router}" for dest, router in cfg.static_routes)
        lines.append(f"dhcp-option=option:classless-static-route,{routes}")
    files.config.write_text("\n".join(lines) + "\n")
    files.leases.touch()
    return _Plan(
        ["dnsmasq", "--keep-in-foreground", f"--conf-file={files.config}"], ready_udp67=True
    )


def _kea(cfg: ServerConfig, iface: str, local: IPv4Address | None, files: _Files) -> _Plan:
    options: list[dict[str, object]] = []
    if cfg.routers:
        options.append({"name": "routers", "data": ", ".join(map(str, cfg.routers))})
    if cfg.dns_servers:
        options.append(
            {"name": "domain-name-servers", "data": ", ".join(map(str, cfg.dns_servers))}
        )
    if cfg.domain:
        options.append({"name": "domain-name", "data": cfg.domain})
    if cfg.search:
        options.append({"name": "domain-search", "data": ", ".join(cfg.search)})
    if cfg.mtu is not None:
        options.append({"name": "interface-mtu", "data": str(cfg.mtu)})
    if cfg.static_routes:
        # Kea 2.2 has no text format for option 121: send the RFC 3442 bytes.
        options.append(
            {"code": 121, "csv-format": False, "data": _route_bytes(cfg.static_routes).hex()}
        )
    dhcp4: dict[str, object] = {
        "interfaces-config": {"interfaces": [iface], "dhcp-socket-type": "raw"},
        "lease-database": {
            "type": "memfile",
            "persist": True,
            "name": str(files.leases),
            "lfc-interval": 0,
        },
        "authoritative": cfg.authoritative,
        "valid-lifetime": cfg.lease_time,
        "min-valid-lifetime": cfg.lease_time,
        "max-valid-lifetime": cfg.lease_time,
        "subnet4": [
            {
                "id": 1,
                "subnet": str(cfg.subnet),
                "pools": [{"pool": f"{cfg.pool[0]} - {cfg.pool[1]}"}],
                "option-data": options,
            }
        ],
        "loggers": [
            {
                "name": "kea-dhcp4",
                "output_options": [{"output": "stdout", "flush": True}],
                "severity": "INFO",
            }
        ],
    }
    if cfg.renew_time is not None:
        dhcp4["renew-timer"] = cfg.renew_time
    if cfg.rebind_time is not None:
        dhcp4["rebind-timer"] = cfg.rebind_time
    files.config.write_text(json.dumps({"Dhcp4": dhcp4}, indent=2))
    env = {
        "KEA_PIDFILE_DIR": str(files.directory),
        "KEA_LOCKFILE_DIR": str(files.directory),
        "KEA_LOGGER_DESTINATION": "stdout",
    }
    # Kea logs DHCP4_STARTED even when it could not open its sockets: check them too.
    return _Plan(
        ["kea-dhcp4", "-c", str(files.config)],
        env=env,
        ready_log="DHCP4_STARTED",
        ready_udp67=True,
        ready_packet=True,
        fail_log="DHCP4_OPEN_SOCKETS_FAILED",
    )


def _dhcpd(cfg: ServerConfig, iface: str, local: IPv4Address | None, files: _Files) -> _Plan:
    inner = [
        f"  range {cfg.pool[0]} {cfg.pool[1]};",
        f"  option subnet-mask {cfg.netmask};",
    ]
    if cfg.routers:
        inner.append(f"  option routers {', '.join(map(str, cfg.routers))};")
    if cfg.dns_servers:
        inner.append(f"  option domain-name-servers {', '.join(map(str, cfg.dns_servers))};")
    if cfg.domain:
        inner.append(f'  option domain-name "{cfg.domain}";')
    if cfg.search:
        names = ", ".join(f'"{name}"' for name in cfg.search)
        inner.append(f"  option domain-search {names};")
    if cfg.mtu is not None:
        inner.append(f"  option interface-mtu {cfg.mtu};")
    if cfg.renew_time is not None:
        inner.append(f"  option dhcp-renewal-time {cfg.renew_time};")
    if cfg.rebind_time is not None:
        inner.append(f"  option dhcp-rebinding-time {cfg.rebind_time};")
    if cfg.static_routes:
        values = ", ".join(str(b) for b in _route_bytes(cfg.static_routes))
        inner.append(f"  option rfc3442-classless-static-routes {values};")
    lines = [
        "option rfc3442-classless-static-routes code 121 = array of integer 8;",
        "ddns-update-style none;",
        *([f"local-address {local};"] if local else []),
        *(["authoritative;"] if cfg.authoritative else []),
        f"default-lease-time {cfg.lease_time};",
        f"max-lease-time {cfg.lease_time};",
        f"ping-check {'true' if cfg.ping_check else 'false'};",
        f"subnet {cfg.subnet.network_address} netmask {cfg.netmask} {{",
        *inner,
        "}",
    ]
    files.config.write_text("\n".join(lines) + "\n")
    files.leases.touch()  # dhcpd refuses to start without one
    argv = ["dhcpd", "-4", "-f", "-d", "-cf", str(files.config), "-lf", str(files.leases)]
    argv += ["-pf", str(files.pidfile), iface]
    return _Plan(argv, ready_log="Server starting service.", ready_udp67=True, ready_packet=True)


def _udhcpd(cfg: ServerConfig, iface: str, local: IPv4Address | None, files: _Files) -> _Plan:
    size = int(cfg.pool[1]) - int(cfg.pool[0]) + 1
    lines = [
        f"interface {iface}",
        f"start {cfg.pool[0]}",
        f"end {cfg.pool[1]}",
        f"max_leases {size}",
        f"lease_file {files.leases}",
        f"pidfile {files.pidfile}",
        "auto_time 0",  # the lab asks for the lease file with SIGUSR1
        f"min_lease {min(cfg.lease_time, 60)}",
        f"opt subnet {cfg.netmask}",
        f"opt lease {cfg.lease_time}",
    ]
    if cfg.routers:
        lines.append(f"opt router {' '.join(map(str, cfg.routers))}")
    if cfg.dns_servers:
        lines.append(f"opt dns {' '.join(map(str, cfg.dns_servers))}")
    if cfg.domain:
        lines.append(f"opt domain {cfg.domain}")
    if cfg.search:
        lines.append(f"opt search {' '.join(cfg.search)}")
    if cfg.mtu is not None:
        lines.append(f"opt mtu {cfg.mtu}")
    # busybox knows no T1/T2 names: numeric options take hex data.
    if cfg.renew_time is not None:
        lines.append(f"opt 0x3a {cfg.renew_time:08x}")
    if cfg.rebind_time is not None:
        lines.append(f"opt 0x3b {cfg.rebind_time:08x}")
    if cfg.static_routes:
        routes = " ".join(f"{dest} {router}" for dest, router in cfg.static_routes)
        lines.append(f"opt staticroutes {routes}")
    files.config.write_text("\n".join(lines) + "\n")
    files.leases.touch()
    # -a: milliseconds to wait for an ARP reply before offering a new address.
    argv = ["busybox", "udhcpd", "-f", "-a", "2000" if cfg.ping_check else "0", str(files.config)]
    return _Plan(argv, ready_udp67=True)


_RENDER: dict[ServerKind, Callable[[ServerConfig, str, IPv4Address | None, _Files], _Plan]] = {
    "dnsmasq": _dnsmasq,
    "kea": _kea,
    "dhcpd": _dhcpd,
    "udhcpd": _udhcpd,
}

# ---------------------------------------------------------------- lease files


def _parse_dnsmasq(text: str) -> list[Lease]:
    leases = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5 or not parts[0].isdigit():
            continue
        expiry = int(parts[0])
        leases.append(
            Lease(
                address=IPv4Address(parts[2]),
                mac=parts[1].lower(),
                expires=None if expiry == 0 else float(expiry),
                hostname=None if parts[3] == "*" else parts[3],
                client_id=None if parts[4] == "*" else parts[4],
            )
        )
    return leases


def _parse_kea(text: str) -> list[Lease]:
    latest: dict[IPv4Address, Lease | None] = {}
    for line in text.splitlines()[1:]:  # header first
        parts = line.split(",")
        if len(parts) < 10:
            continue
        address = IPv4Address(parts[0])
        valid, expire, state = int(parts[3]), int(parts[4]), int(parts[9])
        if state != 0 or valid == 0:  # declined, expired-reclaimed or released
            latest[address] = None
            continue
        latest[address] = Lease(
            address=address,
            mac=parts[1].lower(),
            expires=float(expire),
            hostname=parts[8] or None,
            client_id=parts[2] or None,
        )
    return [lease for lease in latest.values() if lease is not None]


_DHCPD_LEASE = re.compile(r"lease (\S+) \{(.*?)\n\}", re.DOTALL)


def _parse_dhcpd(text: str) -> list[Lease]:
    latest: dict[IPv4Address, Lease | None] = {}
    for match in _DHCPD_LEASE.finditer(text):
        address, body = IPv4Address(match[1]), match[2]
        if not re.search(r"^\s*binding state active;", body, re.MULTILINE):
            latest[address] = None
            continue
        mac = re.search(r"hardware ethernet ([0-9a-fA-F:]+);", body)
        ends = re.search(r"ends \d (\S+ \S+);", body)
        host = re.search(r'client-hostname "([^"]*)";', body)
        expires = None
        if ends:
            stamp = datetime.strptime(ends[1], "%Y/%m/%d %H:%M:%S").replace(tzinfo=UTC)
            expires = stamp.timestamp()
        latest[address] = Lease(
            address=address,
            mac=mac[1].lower() if mac else "",
            expires=expires,
            hostname=host[1] if host else None,
        )
    return [lease for lease in latest.values() if lease is not None]


_UDHCPD_RECORD = 36  # lease_end(4) ip(4) mac(6) hostname(20) pad(2)


def _parse_udhcpd(data: bytes) -> list[Lease]:
    """busybox's binary file: a 64-bit big-endian write time, then fixed records whose
    lease_end is seconds remaining at that time."""
    if len(data) < 8:
        return []
    written = int.from_bytes(data[:8], "big")
    leases = []
    for offset in range(8, len(data) - _UDHCPD_RECORD + 1, _UDHCPD_RECORD):
        record = data[offset : offset + _UDHCPD_RECORD]
        remaining = int.from_bytes(record[0:4], "big")
        host = record[14:34].split(b"\0", 1)[0].decode("ascii", "replace")
        leases.append(
            Lease(
                address=IPv4Address(record[4:8]),
                mac=":".join(f"{b:02x}" for b in record[8:14]),
                expires=float(written + remaining),
                hostname=host or None,
            )
        )
    return leases


# ---------------------------------------------------------------- the handle


@final
class Server:
    """A DHCP server of `kind` running in `node`, serving `config` on the node's interface.

    `stop()`, `restart()`, `pause()`/`resume()` (SIGSTOP/SIGCONT: the server goes silent
    but keeps its state, e.g. to make a client rebind), `leases()`, `log`, `pid`.
    """

    __slots__ = ("_proc", "config", "directory", "kind", "node")

    def __init__(self, kind: ServerKind, node: Node, config: ServerConfig, directory: Path) -> None:
        if kind not in _RENDER:
            raise LabError(f"unknown server kind {kind!r}; known: {', '.join(SERVER_KINDS)}")
        self.kind: ServerKind = kind
        self.node = node
        self.config = config
        self.directory = directory
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<Server {self.kind} pid={self.pid} in {self.node.netns}>"

    @property
    def config_file(self) -> Path:
        """The server's configuration as the lab last rendered it."""
        return self._files().config

    @property
    def lease_file(self) -> Path:
        return self._files().leases

    @property
    def log_file(self) -> Path:
        return self._files().log

    def _files(self) -> _Files:
        d = self.directory
        return _Files(
            directory=d,
            config=d / ("kea-dhcp4.json" if self.kind == "kea" else f"{self.kind}.conf"),
            leases=d / f"{self.kind}.leases",
            pidfile=d / f"{self.kind}.pid",
            log=d / f"{self.kind}.log",
        )

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def log(self) -> str:
        """Everything the server wrote to stdout/stderr since the lab created it."""
        try:
            return self._files().log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        """Start the server and return once it serves; raises ServerError with its log."""
        if self.running:
            raise LabError(f"{self.kind} is already running")
        files = self._files()
        files.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        files.pidfile.unlink(missing_ok=True)
        address = self.node.address.ip if self.node.address else None
        plan = _RENDER[self.kind](self.config, self.node.interface, address, files)
        log_offset = files.log.stat().st_size if files.log.exists() else 0
        with files.log.open("ab") as log:
            self._proc = self.node.popen(
                plan.argv, stdout=log, stderr=subprocess.STDOUT, env=plan.env or None
            )
        self._wait_ready(plan, log_offset)
        log_event(
            _logger, "lab_server_started", kind=self.kind, pid=self._proc.pid, netns=self.node.netns
        )

    def _wait_ready(self, plan: _Plan, log_offset: int) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                raise ServerError(
                    f"{self.kind} exited with status {self._proc.returncode} while starting:"
                    f" {self._log_tail(log_offset)}"
                )
            log = self.log[log_offset:]
            if plan.fail_log is not None and plan.fail_log in log:
                self.stop()
                raise ServerError(f"{self.kind} cannot serve: {self._log_tail(log_offset)}")
            ready = plan.ready_log is None or plan.ready_log in log
            sockets = _socket_inodes(self._proc.pid)
            if ready and plan.ready_udp67:
                ready = bool(sockets & _udp_port_inodes(self._proc.pid, 67))
            if ready and plan.ready_packet:
                ready = bool(sockets & _packet_inodes(self._proc.pid))
            if ready:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(
                    f"{self.kind} did not become ready in {_START_TIMEOUT} s:"
                    f" {self._log_tail(log_offset)}"
                )
            time.sleep(0.003)  # polling the server's observable state, not waiting blindly

    def _log_tail(self, offset: int = 0, lines: int = 8) -> str:
        tail = self.log[offset:].strip().splitlines()[-lines:]
        return " | ".join(tail) or "(no output)"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a few seconds; idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)  # a paused server must run to exit
            try:
                proc.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log_event(_logger, "lab_server_stopped", kind=self.kind, pid=proc.pid)
        self._proc = None

    def restart(self, config: ServerConfig | None = None, *, fresh_leases: bool = False) -> None:
        """Stop, optionally switch to `config` and/or empty the lease database, start."""
        self.stop()
        if config is not None:
            self.config = config
        if fresh_leases:
            for path in self.directory.glob(f"{self._files().leases.name}*"):
                path.unlink()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the server stops answering (its sockets stay open)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause()`."""
        self._signal(signal.SIGCONT)

    def _signal(self, signum: int) -> None:
        pid = self.pid
        if pid is None:
            raise LabError(f"{self.kind} is not running")
        os.kill(pid, signum)

    def leases(self) -> tuple[Lease, ...]:
        """Active leases in the server's lease database, as the server last wrote it."""
        path = self._files().leases
        if self.kind == "udhcpd":
            self._flush_udhcpd()
            return tuple(_parse_udhcpd(path.read_bytes()))
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return ()
        parsers = {"dnsmasq": _parse_dnsmasq, "kea": _parse_kea, "dhcpd": _parse_dhcpd}
        return tuple(parsers[self.kind](text))

    def _flush_udhcpd(self) -> None:
        """udhcpd writes its lease file on SIGUSR1; wait for the write to land."""
        pid = self.pid
        if pid is None:
            return
        path = self._files().leases
        before = path.stat().st_mtime_ns if path.exists() else 0
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if path.exists() and path.stat().st_mtime_ns != before:
                return
            time.sleep(0.002)


def _socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets process `pid` holds open."""
    inodes: set[str] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        with contextlib.suppress(OSError):
            link = str(fd.readlink())
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    return inodes


def _proc_net(pid: int, table: str) -> list[list[str]]:
    """Rows of /proc/PID/net/TABLE: the sockets of that process's network namespace."""
    try:
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
    except OSError:
        return []
    return [line.split() for line in lines]


def _udp_port_inodes(pid: int, port: int) -> set[str]:
    return {row[9] for row in _proc_net(pid, "udp") if row[1].endswith(f":{port:04X}")}


def _packet_inodes(pid: int) -> set[str]:
    return {row[-1] for row in _proc_net(pid, "packet")}


def default_config(address: IPv4Interface) -> ServerConfig:
    """The lab's default: pool .100-.200 (or the upper half of a small subnet), the
    server itself as router and DNS, 120 s leases, no ping check."""
    net = address.network
    hosts = net.num_addresses - 2
    first = net.network_address + (100 if hosts >= 201 else max(2, hosts // 2))
    last = net.network_address + (200 if hosts >= 201 else hosts)
    return ServerConfig(
        subnet=net,
        pool=(first, last),
        routers=(address.ip,),
        dns_servers=(address.ip,),
    )
