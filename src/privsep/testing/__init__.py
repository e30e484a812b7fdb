"""Test helpers for privsep users: a network lab with real DHCP servers.

A `Lab` is an Ethernet segment made of network namespaces: a server node with a bridge,
clients (a namespace each, one interface, no address) and hosts (static address). Real
servers (dnsmasq, ISC Kea, ISC dhcpd, busybox udhcpd) run in it, bound to the lab's
interface only; nothing touches the host's network. Leftovers of crashed runs are removed
by `sweep()`, which never touches a lab whose owner process still runs.

    from privsep.testing import Lab

    with Lab() as lab:
        lab.start_server("dnsmasq")
        client = lab.add_client()
        client.udhcpc()
        assert client.default_gateways() == (lab.server_address.ip,)

pytest users get fixtures from `privsep.testing.pytest_plugin` (`lab`, `dnsmasq_lab`,
`kea_lab`, `dhcpd_lab`, `udhcpd_lab`, `dhcp_lab`). Everything here needs root.
"""

from privsep.testing._capture import DHCP_FILTER, Capture, CapturedPacket, read_pcap
from privsep.testing._errors import LabError, ServerError
from privsep.testing._ip import AddressInfo, Route
from privsep.testing._lab import Lab, derive_mac
from privsep.testing._node import Node, UdhcpcResult
from privsep.testing._servers import SERVER_KINDS, Lease, Server, ServerConfig, ServerKind
from privsep.testing._sweep import SweepResult, sweep

__all__ = [
    "DHCP_FILTER",
    "SERVER_KINDS",
    "AddressInfo",
    "Capture",
    "CapturedPacket",
    "Lab",
    "LabError",
    "Lease",
    "Node",
    "Route",
    "Server",
    "ServerConfig",
    "ServerError",
    "ServerKind",
    "SweepResult",
    "UdhcpcResult",
    "derive_mac",
    "read_pcap",
    "sweep",
]
