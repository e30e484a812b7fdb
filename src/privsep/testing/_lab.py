"""The lab: one Ethernet segment of network namespaces, built and torn down as a unit.

Topology. The server node `<token>-srv` holds a bridge (`lab0` by default) that carries
the server's address; every client or host is a namespace of its own, attached by a veth
pair whose far end sits in the server node, enslaved to the bridge. Veth pairs are
created directly inside the lab namespaces (`ip -n SRV link add ... peer ... netns CLI`),
so no interface of the lab ever appears in the host's namespace. IPv6 address generation
is off on lab interfaces, so the segment carries no router solicitations or DAD noise.

Teardown (exit, exception, Ctrl-C, and whatever `close()` is called from) kills every
process in the lab namespaces, deletes the namespaces (which deletes their interfaces),
the temp dir and the registry record. It blocks SIGINT/SIGTERM while it runs, so a
second Ctrl-C cannot leave half a lab behind; the interrupt is delivered afterwards.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from ipaddress import IPv4Interface
from pathlib import Path
from types import TracebackType
from typing import final

from privsep._log import get_logger, log_event
from privsep.testing._capture import DHCP_FILTER, Capture
from privsep.testing._errors import LabError
from privsep.testing._ip import delete_netns, ip_batch, kill_netns_processes, netns_id
from privsep.testing._node import Node, NodeRole
from privsep.testing._registry import MARKER, Record, new_record
from privsep.testing._servers import Server, ServerConfig, ServerKind, default_config
from privsep.testing._udhcpc import HOOK_NAME, install_hook

_logger = get_logger(__name__)
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


def lab_unavailable_reason() -> str | None:
    """Why this process cannot build a lab, or None if it can."""
    if os.geteuid() != 0:
        return "the network lab needs root (it creates network namespaces)"
    if shutil.which("ip") is None:
        return "the network lab needs iproute2's `ip`"
    return None


def derive_mac(name: str) -> str:
    """A stable, locally administered unicast MAC for a node name (02:70:73 = "ps")."""
    digest = hashlib.sha256(name.encode()).digest()
    return "02:70:73:" + ":".join(f"{b:02x}" for b in digest[:3])


@final
class Lab:
    """A throw-away network segment with real DHCP servers, isolated in namespaces.

    >>> with Lab() as lab:                           # doctest: +SKIP
    ...     server = lab.start_server("kea")
    ...     client = lab.add_client()                # netns with eth0, no address
    ...     client.udhcpc()                          # busybox udhcpc with the lab's hook
    ...     client.addresses()                       # (IPv4Interface('10.77.0.100/24'),)

    `network` is the server's address with prefix (default 10.77.0.1/24). Labs are
    isolated from each other and from the host by their namespaces, so parallel labs
    may use the same subnet. Needs root.
    """

    def __init__(
        self,
        network: IPv4Interface | str = "10.77.0.1/24",
        *,
        bridge: str = "lab0",
        tmp_root: Path | None = None,
    ) -> None:
        self.server_address = IPv4Interface(network)
        if self.server_address.ip in (
            self.server_address.network.network_address,
            self.server_address.network.broadcast_address,
        ):
            raise LabError(f"{network} is not a host address")
        if not _IFNAME_RE.match(bridge):
            raise LabError(f"bad interface name {bridge!r}")
        self.bridge = bridge
        self._tmp_root = tmp_root or Path(tempfile.gettempdir())
        self._record: Record | None = None
        self._server_node: Node | None = None
        self._nodes: dict[str, Node] = {}
        self._servers: list[Server] = []
        self._captures: list[Capture] = []
        self._ports = 0
        self._closed = False

    # -- life cycle ----------------------------------------------------------------

    def __enter__(self) -> Lab:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        """Create the temp dir and the server node with its bridge (`with` calls this)."""
        if self._record is not None:
            raise LabError("a Lab can be opened once")
        if os.geteuid() != 0:
            raise LabError("the network lab needs root (it creates network namespaces)")
        self._record = new_record(self._tmp_root)
        atexit.register(self.close)  # a lab opened without `with` still goes at exit
        try:
            self.tmpdir.mkdir(mode=0o755)
            (self.tmpdir / MARKER).write_text(f"{self._record.owner}\n")
            install_hook(self.tmpdir)
            netns = self._claim_netns("srv")
            mac = derive_mac("server")  # fixed: a bridge would otherwise take a port's MAC
            void = self._claim_netns("void")
            ip_batch([f"netns add {netns}", f"netns add {void}"])
            ip_batch(
                [
                    "link set lo up",
                    f"link add {self.bridge} address {mac} type bridge stp_state 0 forward_delay 0",
                    f"link set {self.bridge} addrgenmode none",
                    # An always-up port gives the bridge carrier before any client is
                    # attached (Kea opens no socket on an interface without carrier).
                    # Its peer sits alone in the silent `void` namespace: no address,
                    # no sockets, so it never answers (no dummy driver everywhere).
                    f"link add carrier0 type veth peer name carrier0 netns {void}",
                    f"link set carrier0 master {self.bridge}",
                    "link set carrier0 addrgenmode none",
                    "link set carrier0 up",
                    f"addr add {self.server_address} dev {self.bridge}",
                    f"link set {self.bridge} up",
                ],
                netns=netns,
            )
            ip_batch(["link set carrier0 addrgenmode none", "link set carrier0 up"], netns=void)
            self._server_node = self._node(
                "server",
                role="server",
                netns=netns,
                interface=self.bridge,
                mac=mac,
                address=self.server_address,
            )
            log_event(_logger, "lab_opened", token=self.token, network=str(self.server_address))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Tear everything down; safe to call more than once and after a failed open."""
        if self._closed or self._record is None:
            return
        if os.getpid() != self._record.owner:
            return  # a forked child (its atexit, say) must not tear down its parent's lab
        blocked = {signal.SIGINT, signal.SIGTERM}
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            self._teardown(self._record)
            self._closed = True
            atexit.unregister(self.close)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def _teardown(self, record: Record) -> None:
        for capture in self._captures:
            with contextlib.suppress(Exception):
                capture.stop()
        ids = [i for i in (netns_id(name) for name in record.netns) if i is not None]
        try:
            killed = kill_netns_processes(ids)
        except LabError as exc:  # e.g. a process stuck in D state: still delete the rest
            log_event(_logger, "lab_kill_failed", level=logging.WARNING, error=str(exc))
            killed = []
        for node in self._all_nodes():
            node.reap()
        for server in self._servers:
            server.stop()
        deleted = delete_netns(record.netns)
        shutil.rmtree(record.tmpdir, ignore_errors=True)
        record.path.unlink(missing_ok=True)
        log_event(_logger, "lab_closed", token=record.token, killed=len(killed), netns=len(deleted))

    # -- names and nodes ----------------------------------------------------------

    @property
    def token(self) -> str:
        """`privsep-<pid>-<hex>`: the prefix of every name this lab uses."""
        return self._require_open().token

    @property
    def tmpdir(self) -> Path:
        """The lab's temp dir: configs, leases, logs, captures, resolv.conf files."""
        return Path(self._require_open().tmpdir)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every network namespace of the lab."""
        return tuple(self._require_open().netns)

    def _require_open(self) -> Record:
        if self._record is None:
            raise LabError("the lab is not open (use `with Lab() as lab:`)")
        if self._closed:
            raise LabError("the lab is closed")
        return self._record

    def _claim_netns(self, role: str) -> str:
        record = self._require_open()
        name = f"{record.token}-{role}"
        record.netns.append(name)
        record.save()  # written before the namespace exists, so a crash leaves a record
        return name

    def _node(
        self,
        name: str,
        *,
        role: NodeRole,
        netns: str,
        interface: str,
        mac: str,
        address: IPv4Interface | None,
    ) -> Node:
        directory = self.tmpdir / "nodes" / name
        directory.mkdir(parents=True, exist_ok=True)
        return Node(
            name=name,
            role=role,
            netns=netns,
            interface=interface,
            mac=mac,
            address=address,
            directory=directory,
            hook=self.tmpdir / HOOK_NAME,
        )

    def _all_nodes(self) -> Iterator[Node]:
        if self._server_node is not None:
            yield self._server_node
        yield from self._nodes.values()

    @property
    def server_node(self) -> Node:
        """The node holding the bridge (interface `bridge`, the server address)."""
        self._require_open()
        assert self._server_node is not None
        return self._server_node

    def _attach(
        self,
        name: str,
        *,
        role: NodeRole,
        interface: str,
        mac: str | None,
        address: IPv4Interface | None,
    ) -> Node:
        self._require_open()
        if not _NAME_RE.match(name):
            raise LabError(f"bad node name {name!r} (lowercase letters, digits, _.-)")
        if name in self._nodes or name == "server":
            raise LabError(f"the lab already has a node named {name!r}")
        if not _IFNAME_RE.match(interface):
            raise LabError(f"bad interface name {interface!r}")
        mac = mac or derive_mac(name)
        netns = self._claim_netns(f"{role[0]}-{name}")
        self._ports += 1
        port = f"v{role[0]}{self._ports}"
        ip_batch([f"netns add {netns}"])
        ip_batch(
            [
                f"link add {port} type veth peer name {interface} address {mac} netns {netns}",
                f"link set {port} addrgenmode none",
                f"link set {port} master {self.bridge}",
                f"link set {port} up",
            ],
            netns=self.server_node.netns,
        )
        setup = ["link set lo up", f"link set {interface} addrgenmode none"]
        if address is not None:
            setup.append(f"addr add {address} dev {interface}")
        setup.append(f"link set {interface} up")
        ip_batch(setup, netns=netns)
        node = self._node(
            name, role=role, netns=netns, interface=interface, mac=mac, address=address
        )
        self._nodes[name] = node
        return node

    def add_client(
        self, name: str = "client", *, interface: str = "eth0", mac: str | None = None
    ) -> Node:
        """A new client namespace with `interface` up and no address (MAC derived from
        `name` unless given)."""
        return self._attach(name, role="client", interface=interface, mac=mac, address=None)

    def add_host(
        self,
        name: str,
        address: IPv4Interface | str | None = None,
        *,
        interface: str = "eth0",
        mac: str | None = None,
    ) -> Node:
        """A new namespace on the segment with a static address (default: the highest
        free one in the subnet). E.g. a host that already holds an address a DHCP client
        is about to be offered, to provoke an RFC 5227 conflict."""
        if address is None:
            address = self._free_host_address()
        iface_address = IPv4Interface(address)
        if "/" not in str(address):
            iface_address = IPv4Interface(f"{address}/{self.server_address.network.prefixlen}")
        return self._attach(name, role="host", interface=interface, mac=mac, address=iface_address)

    def _free_host_address(self) -> IPv4Interface:
        used = {n.address.ip for n in self._all_nodes() if n.address is not None}
        net = self.server_address.network
        candidate = net.broadcast_address - 1
        while candidate in used:
            candidate -= 1
        return IPv4Interface(f"{candidate}/{net.prefixlen}")

    def client(self, name: str = "client") -> Node:
        """The client or host node called `name`."""
        try:
            return self._nodes[name]
        except KeyError:
            raise LabError(f"the lab has no node named {name!r}") from None

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Clients and hosts, in the order they were added."""
        return tuple(self._nodes.values())

    # -- servers and captures ----------------------------------------------------

    def server_config(self, **changes: object) -> ServerConfig:
        """The default ServerConfig for this lab's subnet, with `changes` applied."""
        return default_config(self.server_address).with_changes(**changes)

    def start_server(
        self, kind: ServerKind, config: ServerConfig | None = None, *, node: Node | None = None
    ) -> Server:
        """Start a DHCP server of `kind` and return once it serves.

        By default it runs in the server node on the bridge; pass a host `node` to run a
        second server elsewhere on the segment. Without `config` that server offers
        itself as router and DNS, with the default pool: give it a pool of its own.
        """
        self._require_open()
        node = node or self.server_node
        config = config or default_config(node.address or self.server_address)
        directory = self.tmpdir / "servers" / f"{kind}-{len(self._servers)}"
        server = Server(kind, node, config, directory)
        self._servers.append(server)
        server.start()
        return server

    @property
    def servers(self) -> tuple[Server, ...]:
        return tuple(self._servers)

    @property
    def server(self) -> Server:
        """The most recently started server."""
        if not self._servers:
            raise LabError("no server has been started in this lab")
        return self._servers[-1]

    def capture(
        self,
        node: Node | None = None,
        *,
        interface: str | None = None,
        bpf_filter: str = DHCP_FILTER,
    ) -> Capture:
        """Start tcpdump (default: on the bridge, which sees the whole segment)."""
        node = node or self.server_node
        path = self.tmpdir / f"capture-{len(self._captures)}.pcap"
        capture = Capture(node, interface or node.interface, path, bpf_filter)
        self._captures.append(capture)
        return capture
