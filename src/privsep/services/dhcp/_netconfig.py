"""Netlink operations for the actuator, on a NETLINK_ROUTE socket it was given.

The actuator has no right to create sockets: the supervisor opens an
AF_NETLINK/SOCK_DGRAM/NETLINK_ROUTE socket inside the interface's network
namespace and passes the fd (possibly unbound: the kernel binds it on the first
send). The socket keeps the namespace it was made in, so every operation here
acts there, whatever namespace this process lives in.

One request at a time (an asyncio.Lock): send, then read datagrams until
`_netlink.Reply` says the answer for that sequence number is complete. Before
each request the socket is drained without waiting, so answers to a cancelled
request (and the rest of a dump it left running, which the kernel would
otherwise refuse to restart: EBUSY) never mix with the next one. Rtnetlink
answers within the send call, so the first non-blocking read nearly always
succeeds; otherwise the loop's reader callback wakes us, with a deadline.

Stdlib only, on purpose: pyroute2 cost 70-480 ms of import and 12-16 MiB, more than
the whole DHCP client may spend. Everything is IPv4, main table, one interface
index per call; `_netlink` has the wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Final, TypeVar, final

from privsep.services.dhcp import _netlink as nl
from privsep.services.dhcp._netlink import Expect, MalformedReply, Message, NetlinkFailed

__all__ = [
    "INFINITE_LIFETIME",
    "RTPROT_DHCP",
    "RT_SCOPE_LINK",
    "RT_SCOPE_UNIVERSE",
    "RT_TABLE_MAIN",
    "KernelAddress",
    "LinkInfo",
    "NetConfig",
    "NetlinkFailed",
    "Route",
]

INFINITE_LIFETIME: Final = 0xFFFFFFFF
RTPROT_DHCP: Final = 16  # `proto dhcp` in `ip route`: marks the routes we install
RT_TABLE_MAIN: Final = 254
RT_SCOPE_UNIVERSE: Final = 0
RT_SCOPE_LINK: Final = 253

RECV_SIZE: Final = 64 * 1024  # > the 32 KiB the kernel puts in one dump datagram
TIMEOUT: Final = 5.0  # seconds for the kernel to answer one request
DUMP_TRIES: Final = 3  # a dump interrupted (table changed) or overrun is repeated
_DRAIN_LIMIT: Final = 4096  # datagrams thrown away at most before a request

_T = TypeVar("_T")


@final
@dataclass(frozen=True, slots=True)
class Route:
    """An IPv4 route of the main table on our interface. `gateway` None: on-link
    (scope link). Identity in the kernel is (destination, metric)."""

    destination: IPv4Network
    gateway: IPv4Address | None
    metric: int

    @property
    def key(self) -> tuple[IPv4Network, int]:
        return (self.destination, self.metric)


@final
@dataclass(frozen=True, slots=True)
class LinkInfo:
    index: int
    name: str
    mtu: int
    max_mtu: int | None  # None: the kernel does not say


@final
@dataclass(frozen=True, slots=True)
class KernelAddress:
    interface: IPv4Interface
    broadcast: IPv4Address | None
    valid_lft: int | None  # seconds left; None: forever
    preferred_lft: int | None


def _lifetime(value: int | None) -> int | None:
    return None if value is None or value == INFINITE_LIFETIME else value


# -- decoding replies (MalformedReply on anything odd, nothing else) --------------


def decode_link(msgs: list[Message], ifindex: int) -> LinkInfo:
    links = [m for m in msgs if m.kind == nl.RTM_NEWLINK]
    if not links:
        raise MalformedReply("no RTM_NEWLINK in the answer")
    index, attrs = nl.parse_ifinfomsg(links[0])
    if index != ifindex:
        raise MalformedReply(f"answer about link {index}, not {ifindex}")
    mtu = attrs.u32(nl.IFLA_MTU)
    if mtu is None:
        raise MalformedReply("link without IFLA_MTU")
    return LinkInfo(
        index=index,
        name=attrs.text(nl.IFLA_IFNAME) or "",
        mtu=mtu,
        max_mtu=attrs.u32(nl.IFLA_MAX_MTU),
    )


def decode_addresses(msgs: list[Message], ifindex: int) -> tuple[KernelAddress, ...]:
    found = []
    for msg in msgs:
        if msg.kind != nl.RTM_NEWADDR:
            continue
        header, attrs = nl.parse_ifaddrmsg(msg)
        if header.family != socket.AF_INET or header.ifindex != ifindex:
            continue
        local = attrs.ipv4(nl.IFA_LOCAL) or attrs.ipv4(nl.IFA_ADDRESS)
        if local is None or header.prefixlen > 32:
            raise MalformedReply(f"address without IFA_LOCAL or prefix {header.prefixlen}")
        valid, preferred = attrs.cacheinfo() or (None, None)
        found.append(
            KernelAddress(
                interface=IPv4Interface((local, header.prefixlen)),
                broadcast=attrs.ipv4(nl.IFA_BROADCAST),
                valid_lft=_lifetime(valid),
                preferred_lft=_lifetime(preferred),
            )
        )
    return tuple(found)


def decode_routes(msgs: list[Message], ifindex: int) -> tuple[Route, ...]:
    """Main-table IPv4 unicast routes out of `ifindex` (multipath routes have no
    RTA_OIF and are left out)."""
    found = []
    for msg in msgs:
        if msg.kind != nl.RTM_NEWROUTE:
            continue
        header, attrs = nl.parse_rtmsg(msg)
        if header.family != socket.AF_INET or header.kind != nl.RTN_UNICAST:
            continue
        table = attrs.u32(nl.RTA_TABLE)
        if (header.table if table is None else table) != RT_TABLE_MAIN:
            continue
        if attrs.u32(nl.RTA_OIF) != ifindex:
            continue
        destination = attrs.ipv4(nl.RTA_DST) or IPv4Address(0)
        try:
            network = IPv4Network((destination, header.dst_len))
        except ValueError:
            raise MalformedReply(f"route {destination}/{header.dst_len}") from None
        found.append(Route(network, attrs.ipv4(nl.RTA_GATEWAY), attrs.u32(nl.RTA_PRIORITY) or 0))
    return tuple(found)


def _decode(
    op: str, decode: Callable[[list[Message], int], _T], msgs: list[Message], ifindex: int
) -> _T:
    try:
        return decode(msgs, ifindex)
    except MalformedReply as exc:
        raise MalformedReply(exc.reason, op) from None


# -- encoding requests ------------------------------------------------------------


def _address_body(ifindex: int, interface: IPv4Interface) -> bytes:
    # IFA_LOCAL is the address; IFA_ADDRESS (the peer on point-to-point links) the same.
    return (
        nl.ifaddrmsg(socket.AF_INET, interface.network.prefixlen, ifindex)
        + nl.attr_ipv4(nl.IFA_LOCAL, interface.ip)
        + nl.attr_ipv4(nl.IFA_ADDRESS, interface.ip)
    )


def _route_body(ifindex: int, route: Route) -> bytes:
    scope = RT_SCOPE_LINK if route.gateway is None else RT_SCOPE_UNIVERSE
    body = (
        nl.rtmsg(
            socket.AF_INET,
            route.destination.prefixlen,
            table=RT_TABLE_MAIN,
            proto=RTPROT_DHCP,
            scope=scope,
            kind=nl.RTN_UNICAST,
        )
        + nl.attr_ipv4(nl.RTA_DST, route.destination.network_address)
        + nl.attr_u32(nl.RTA_OIF, ifindex)
        + nl.attr_u32(nl.RTA_PRIORITY, route.metric)
        + nl.attr_u32(nl.RTA_TABLE, RT_TABLE_MAIN)
    )
    if route.gateway is not None:
        body += nl.attr_ipv4(nl.RTA_GATEWAY, route.gateway)
    return body


def _failed(op: str, exc: OSError) -> NetlinkFailed:
    code = exc.errno or 0
    return NetlinkFailed(op, code, exc.strerror or "")


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


@final
class NetConfig:
    """One method per netlink request, errors as NetlinkFailed(op, kernel errno)."""

    __slots__ = ("_buffer", "_lock", "_seq", "_sock")

    def __init__(self, sock: socket.socket, first_seq: int) -> None:
        self._sock = sock
        self._seq = first_seq
        self._lock = asyncio.Lock()
        self._buffer = bytearray(RECV_SIZE)

    @classmethod
    async def open(cls, fd: int) -> NetConfig:
        """Take ownership of the NETLINK_ROUTE socket `fd` (closed by `close`)."""
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            raise _failed("open", exc) from exc
        if (sock.family, sock.proto) != (socket.AF_NETLINK, socket.NETLINK_ROUTE):
            sock.detach()  # not ours to close
            raise NetlinkFailed("open", 0, f"fd {fd} is not a NETLINK_ROUTE socket")
        sock.setblocking(False)
        # Kernel error messages in NLMSG_ERROR, without the echo of our request.
        for option in (nl.NETLINK_EXT_ACK, nl.NETLINK_CAP_ACK):
            with contextlib.suppress(OSError):
                sock.setsockopt(nl.SOL_NETLINK, option, 1)
        # Sequence numbers of an earlier owner of this socket should not recur.
        loop = asyncio.get_running_loop()
        return cls(sock, int(loop.time() * 1000) & 0x3FFFFFFF)

    def close(self) -> None:
        self._sock.close()

    # -- transport ----------------------------------------------------------------

    async def _request(
        self, op: str, kind: int, flags: int, body: bytes, expect: Expect
    ) -> list[Message]:
        async with self._lock:
            for _ in range(DUMP_TRIES):
                self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
                reply = nl.Reply(op, self._seq, expect)
                request = nl.message(kind, flags | nl.NLM_F_REQUEST, self._seq, body)
                try:
                    await self._exchange(reply, request)
                except NetlinkFailed as exc:
                    if expect is not Expect.DUMP or exc.errno != errno.ENOBUFS:
                        raise
                    continue  # we lost part of the dump: dump again
                if not reply.interrupted:
                    return reply.messages
            raise NetlinkFailed(op, errno.EAGAIN, f"dump inconsistent {DUMP_TRIES} times")

    async def _exchange(self, reply: nl.Reply, request: bytes) -> None:
        self._drain()
        try:
            self._sock.sendto(request, (0, 0))
        except OSError as exc:
            raise _failed(reply.op, exc) from exc
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        view = memoryview(self._buffer)
        while not reply.done:
            try:
                size, _, flags, sender = self._sock.recvmsg_into((view,))
            except (BlockingIOError, InterruptedError):
                await self._readable(loop, reply.op, deadline)
                continue
            except OSError as exc:  # ENOBUFS: the kernel dropped answers
                raise _failed(reply.op, exc) from exc
            if isinstance(sender, tuple) and sender and sender[0] != 0:
                continue  # not from the kernel
            if flags & socket.MSG_TRUNC:
                raise NetlinkFailed(reply.op, errno.EMSGSIZE, f"answer over {RECV_SIZE} bytes")
            reply.feed(bytes(view[:size]))

    async def _readable(self, loop: asyncio.AbstractEventLoop, op: str, deadline: float) -> None:
        ready: asyncio.Future[None] = loop.create_future()
        fd = self._sock.fileno()
        loop.add_reader(fd, _wake, ready)
        try:
            await asyncio.wait_for(ready, max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise NetlinkFailed(op, errno.ETIMEDOUT, "no answer from the kernel") from None
        finally:
            loop.remove_reader(fd)

    def _drain(self) -> None:
        """Throw away whatever is queued: it answers no request of ours still waiting."""
        for _ in range(_DRAIN_LIMIT):
            try:
                self._sock.recv_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:  # ENOBUFS is reported once, then cleared
                    return

    # -- operations -----------------------------------------------------------------

    async def link(self, ifindex: int) -> LinkInfo:
        op = f"get link {ifindex}"
        body = nl.ifinfomsg(ifindex) + nl.attr_u32(nl.IFLA_EXT_MASK, nl.RTEXT_FILTER_SKIP_STATS)
        msgs = await self._request(op, nl.RTM_GETLINK, 0, body, Expect.ONE)
        return _decode(op, decode_link, msgs, ifindex)

    async def link_index(self, ifname: str) -> int:
        """The index of `ifname` in the socket's namespace."""
        op = f"get link {ifname}"
        body = (
            nl.ifinfomsg(0)
            + nl.attr(nl.IFLA_IFNAME, ifname.encode() + b"\0")
            + nl.attr_u32(nl.IFLA_EXT_MASK, nl.RTEXT_FILTER_SKIP_STATS)
        )
        msgs = await self._request(op, nl.RTM_GETLINK, 0, body, Expect.ONE)
        for msg in msgs:
            if msg.kind == nl.RTM_NEWLINK:
                index, _ = nl.parse_ifinfomsg(msg)
                return index
        raise NetlinkFailed(op, errno.ENODEV, "no such interface")

    async def addresses(self, ifindex: int) -> tuple[KernelAddress, ...]:
        op = "dump addresses"
        body = nl.ifaddrmsg(socket.AF_INET, 0, ifindex)
        msgs = await self._request(op, nl.RTM_GETADDR, nl.NLM_F_DUMP, body, Expect.DUMP)
        return _decode(op, decode_addresses, msgs, ifindex)

    async def routes(self, ifindex: int) -> tuple[Route, ...]:
        """Main-table IPv4 unicast routes out of `ifindex` (kernel and ours alike)."""
        op = "dump routes"
        body = nl.rtmsg(socket.AF_INET, 0)
        msgs = await self._request(op, nl.RTM_GETROUTE, nl.NLM_F_DUMP, body, Expect.DUMP)
        return _decode(op, decode_routes, msgs, ifindex)

    async def add_address(
        self,
        ifindex: int,
        interface: IPv4Interface,
        broadcast: IPv4Address | None,
        lifetime: int | None,
        *,
        replace: bool = False,
    ) -> None:
        """Add (or, with `replace`, add-or-update) an address. `lifetime` None is
        forever; otherwise the kernel itself removes the address when it runs out."""
        seconds = INFINITE_LIFETIME if lifetime is None else lifetime
        body = _address_body(ifindex, interface)
        if broadcast is not None:
            body += nl.attr_ipv4(nl.IFA_BROADCAST, broadcast)
        body += nl.attr(nl.IFA_CACHEINFO, nl.cacheinfo(valid=seconds, preferred=seconds))
        command, flags = _command(replace)
        await self._request(
            f"{command} address {interface}", nl.RTM_NEWADDR, flags, body, Expect.ACK
        )

    async def delete_address(self, ifindex: int, interface: IPv4Interface) -> None:
        await self._request(
            f"delete address {interface}",
            nl.RTM_DELADDR,
            nl.NLM_F_ACK,
            _address_body(ifindex, interface),
            Expect.ACK,
        )

    async def add_route(self, ifindex: int, route: Route, *, replace: bool = False) -> None:
        """Add a route; fails (EEXIST) if the same (destination, metric) exists unless
        `replace`."""
        command, flags = _command(replace)
        await self._request(
            f"{command} route {route.destination} via {route.gateway or 'link'}",
            nl.RTM_NEWROUTE,
            flags,
            _route_body(ifindex, route),
            Expect.ACK,
        )

    async def delete_route(self, ifindex: int, route: Route) -> None:
        """Delete our route: it must match in gateway, scope and `proto dhcp` too."""
        await self._request(
            f"delete route {route.destination} via {route.gateway or 'link'}",
            nl.RTM_DELROUTE,
            nl.NLM_F_ACK,
            _route_body(ifindex, route),
            Expect.ACK,
        )

    async def set_mtu(self, ifindex: int, mtu: int) -> None:
        body = nl.ifinfomsg(ifindex) + nl.attr_u32(nl.IFLA_MTU, mtu)
        await self._request(f"set mtu {mtu}", nl.RTM_NEWLINK, nl.NLM_F_ACK, body, Expect.ACK)


def _command(replace: bool) -> tuple[str, int]:
    if replace:
        return "replace", nl.NLM_F_ACK | nl.NLM_F_CREATE | nl.NLM_F_REPLACE
    return "add", nl.NLM_F_ACK | nl.NLM_F_CREATE | nl.NLM_F_EXCL
