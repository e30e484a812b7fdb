"""Sockets made inside a named network namespace, for the kernel-level DHCP tests.

Built on the supervisor's own `in_netns`, the same path the real client's fds take.
"""

from __future__ import annotations

import socket

from privsep.sandbox._resources import in_netns


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
