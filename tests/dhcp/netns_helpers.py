"""Network namespaces and sockets made inside them, for the kernel-level DHCP tests.

Sockets are built on the supervisor's own `in_netns`, the same path the real client's fds take.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
from collections.abc import Iterator

from privsep.sandbox._resources import in_netns


def _ip(ns: str, *args: str) -> str:
    result = subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"ip -n {ns} {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@contextlib.contextmanager
def veth_netns(prefix: str = "privsep-act") -> Iterator[tuple[str, int]]:
    """(name, ifindex of pa0) of a fresh namespace `<prefix>-<hex>` holding a veth pair
    pa0/pa1, both up; deleting it on exit also removes the pair."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        _ip(name, "link", "add", "pa0", "type", "veth", "peer", "name", "pa1")
        _ip(name, "link", "set", "pa0", "up")
        _ip(name, "link", "set", "pa1", "up")
        yield name, json.loads(_ip(name, "-j", "link", "show", "dev", "pa0"))[0]["ifindex"]
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def netlink_socket_in(ns: str, kind: int = socket.SOCK_DGRAM, groups: int = 0) -> socket.socket:
    """A NETLINK_ROUTE socket created inside `ns` (bound to `groups` when given)."""
    made: list[socket.socket] = []

    def make() -> None:
        sock = socket.socket(socket.AF_NETLINK, kind, socket.NETLINK_ROUTE)
        if groups:
            sock.bind((0, groups))
        made.append(sock)

    in_netns(ns, make, what="netlink test socket")
    return made[0]
