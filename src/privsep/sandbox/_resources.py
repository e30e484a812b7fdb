"""Opening the resources a layout grants a process, before the process starts.

The supervisor opens every `fds:` entry itself and hands the fds over at spawn,
so a sandboxed process never needs `socket()` or `open()` for them. A socket
keeps the network namespace it was created in: a resource with `netns` is
opened by a short-lived thread that has joined that namespace (setns on one
thread changes only that thread), so the supervisor's own namespace is never
switched and nothing needs restoring.

Packet sockets get a classic BPF program from `FILTERS` (by name: a layout
cannot supply code), attached before the socket is bound so no unfiltered
frame is ever queued, then locked with SO_LOCK_FILTER so the holder can neither
detach nor replace it. They ignore their own outgoing frames. The holder may
send any frame through the socket: Linux has no write filter, so the process
holding it checks its egress frames itself.

Deliberately light (socket, struct, threading only): the supervisor imports it.
"""

from __future__ import annotations

import array
import errno
import os
import socket
import struct
import threading
from collections.abc import Callable

from privsep._errors import PrivsepError
from privsep.layout._model import (
    ConnectFd,
    Fd,
    FileFd,
    ListenFd,
    NetlinkFd,
    PacketFd,
    Process,
    Resource,
)
from privsep.sandbox import _namespaces

__all__ = ["FILTERS", "ResourceError", "open_resources"]

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
SO_LOCK_FILTER = 44
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23  # Linux 4.20: do not loop our own transmitted frames back
NETLINK_ROUTE = 0
_CONNECT_TIMEOUT = 5.0
_LISTEN_BACKLOG = 128


class ResourceError(PrivsepError):
    """A granted resource could not be opened; the message is one line naming the fd."""


# --- classic BPF ---------------------------------------------------------------------
# (code, jt, jf, k) as in <linux/filter.h>; jumps count instructions after the next.

_LD_H_ABS = 0x28  # A = half word at [k]
_LD_B_ABS = 0x30  # A = byte at [k]
_LDX_B_MSH = 0xB1  # X = 4 * ([k] & 0xf): the IPv4 header length
_LD_H_IND = 0x48  # A = half word at [X + k]
_JEQ = 0x15
_JSET = 0x45
_RET = 0x06

Instruction = tuple[int, int, int, int]

# IPv4 UDP to port 68 that is not a fragment (neither MF nor an offset: a later
# fragment has no UDP header where we look), or any ARP frame.
_DHCP_CLIENT: tuple[Instruction, ...] = (
    (_LD_H_ABS, 0, 0, 12),  # 0: ethertype
    (_JEQ, 8, 0, 0x0806),  # 1: ARP -> accept
    (_JEQ, 0, 8, 0x0800),  # 2: not IPv4 -> drop
    (_LD_B_ABS, 0, 0, 23),  # 3: IP protocol
    (_JEQ, 0, 6, 17),  # 4: not UDP -> drop
    (_LD_H_ABS, 0, 0, 20),  # 5: flags + fragment offset
    (_JSET, 4, 0, 0x3FFF),  # 6: MF or offset -> drop
    (_LDX_B_MSH, 0, 0, 14),  # 7: X = IP header length
    (_LD_H_IND, 0, 0, 16),  # 8: UDP destination port (14 + X + 2)
    (_JEQ, 0, 1, 68),  # 9: port 68 -> accept, else drop
    (_RET, 0, 0, 0xFFFFFFFF),  # 10: accept the whole frame
    (_RET, 0, 0, 0),  # 11: drop
)

FILTERS: dict[str, tuple[Instruction, ...]] = {"dhcp-client": _DHCP_CLIENT}


def attach_filter(sock: socket.socket, program: tuple[Instruction, ...]) -> None:
    """Attach a classic BPF program to `sock` (SO_ATTACH_FILTER)."""
    code = array.array("B", b"".join(struct.pack("=HBBI", *insn) for insn in program))
    address, _ = code.buffer_info()
    fprog = struct.pack("@HP", len(program), address)  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    del code  # kept alive until here: the kernel copied the program


# --- opening ---------------------------------------------------------------------


def open_resources(process: Process) -> dict[str, int]:
    """Open every fd `process` is granted: name -> fd (non-inheritable), in layout order.

    Raises ResourceError (closing whatever was already opened) if one fails.
    """
    opened: dict[str, int] = {}
    by_netns: dict[str | None, list[Fd]] = {}
    for fd in process.fds:
        by_netns.setdefault(_netns(fd.resource), []).append(fd)
    try:
        for netns, fds in by_netns.items():
            open_group = _opener(fds, netns, opened)
            if netns is None:
                open_group()
            else:
                in_netns(netns, open_group, what=f"fd {fds[0].name}")
    except BaseException:
        for number in opened.values():
            os.close(number)
        raise
    return {fd.name: opened[fd.name] for fd in process.fds}


def _netns(resource: Resource) -> str | None:
    return None if isinstance(resource, FileFd) else resource.netns or None


def _opener(fds: list[Fd], netns: str | None, opened: dict[str, int]) -> Callable[[], None]:
    def open_all() -> None:
        for fd in fds:
            opened[fd.name] = open_resource(fd, netns)

    return open_all


def open_resource(fd: Fd, netns: str | None = None) -> int:
    """Open one resource in the calling thread's network namespace."""
    where = f"netns {netns}" if netns else "the current netns"
    resource = fd.resource
    try:
        if isinstance(resource, PacketFd):
            return _packet(fd.name, resource, where)
        if isinstance(resource, NetlinkFd):
            return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE).detach()
        if isinstance(resource, ListenFd):
            return _listen(resource)
        if isinstance(resource, ConnectFd):
            return _connect(resource)
        return _file(resource)
    except ResourceError:
        raise
    except OSError as exc:
        raise ResourceError(
            f"fd {fd.name}: {_describe(resource)} in {where}: {_reason(exc)}"
        ) from exc


def _packet(name: str, resource: PacketFd, where: str) -> int:
    program = FILTERS.get(resource.filter)
    if program is None:
        raise ResourceError(f"fd {name}: unknown packet filter {resource.filter!r}")
    # Protocol 0: the socket receives nothing until bound, so the filter is on first.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        attach_filter(sock, program)
        sock.setsockopt(socket.SOL_SOCKET, SO_LOCK_FILTER, 1)
        # The holder's own ARP probes must not come back as if another host sent them.
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        try:
            sock.bind((resource.interface, ETH_P_ALL))
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                raise ResourceError(
                    f"fd {name}: no interface {resource.interface} in {where}"
                ) from exc
            raise
        return sock.detach()
    finally:
        sock.close()  # no-op once detached


def _inet_socket(address: str, proto: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    return socket.socket(family, kind)


def _listen(resource: ListenFd) -> int:
    sock = _inet_socket(resource.address, resource.proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((resource.address, resource.port))
        if resource.proto == "tcp":
            sock.listen(_LISTEN_BACKLOG)
        return sock.detach()
    finally:
        sock.close()


def _connect(resource: ConnectFd) -> int:
    sock = _inet_socket(resource.address, resource.proto)
    try:
        sock.settimeout(_CONNECT_TIMEOUT)
        sock.connect((resource.address, resource.port))
        sock.setblocking(True)
        return sock.detach()
    finally:
        sock.close()


_FILE_FLAGS = {
    "r": os.O_RDONLY,
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "rw": os.O_RDWR | os.O_CREAT,
    "a": os.O_WRONLY | os.O_APPEND | os.O_CREAT,
}


def _file(resource: FileFd) -> int:
    return os.open(resource.path, _FILE_FLAGS[resource.mode] | os.O_CLOEXEC, 0o600)


def _describe(resource: Resource) -> str:
    if isinstance(resource, PacketFd):
        return f"packet socket on {resource.interface}"
    if isinstance(resource, NetlinkFd):
        return f"netlink {resource.protocol} socket"
    if isinstance(resource, ListenFd):
        return f"cannot listen on {resource.proto} {resource.address}:{resource.port}"
    if isinstance(resource, ConnectFd):
        return f"cannot connect to {resource.proto} {resource.address}:{resource.port}"
    return f"cannot open {resource.path} (mode {resource.mode})"


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError) and exc.errno is None:
        return "timed out"
    return (exc.strerror or str(exc)).lower()


# --- network namespaces ------------------------------------------------------------


def in_netns(name: str, action: Callable[[], None], *, what: str = "resource") -> None:
    """Run `action` in a thread that has joined the network namespace `name`."""
    try:
        ns_fd = os.open(f"{_namespaces.NETNS_DIR}/{name}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise ResourceError(f"{what}: no network namespace {name!r} ({_reason(exc)})") from exc
    failure: list[BaseException] = []

    def run() -> None:
        try:
            try:
                _namespaces.setns_fd(ns_fd, _namespaces.CLONE_NEWNET)
            except OSError as exc:
                reason = os.strerror(exc.errno or 0).lower()
                raise ResourceError(f"{what}: cannot join netns {name}: {reason}") from None
            action()
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    try:
        # The thread ends after `action`, taking its namespace with it.
        thread = threading.Thread(target=run, name=f"privsep-netns-{name}")
        thread.start()
        thread.join()
    finally:
        os.close(ns_fd)
    if failure:
        raise failure[0]
