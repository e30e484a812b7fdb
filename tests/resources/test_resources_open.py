"""The supervisor's resource opening, checked against the real kernel.

Each test module run creates two network namespaces joined by a veth pair
(`privsep-<hex>a` in namespace A, `privsep-<hex>b` in namespace B) and removes
them afterwards; frames are sent from B and must (or must not) reach the
packet socket opened in A.
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from privsep.layout import _names
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
from privsep.sandbox._resources import (
    FILTERS,
    SO_ATTACH_FILTER,
    SO_DETACH_FILTER,
    ResourceError,
    attach_filter,
    in_netns,
    open_resources,
)

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]

SRC_MAC = bytes.fromhex("027700000001")
BROADCAST = b"\xff" * 6


@dataclass(frozen=True)
class Link:
    ns_a: str
    ns_b: str
    if_a: str
    if_b: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def link() -> Iterator[Link]:
    tag = secrets.token_hex(3)
    made = Link(
        f"privsep-res-{tag}-a", f"privsep-res-{tag}-b", f"privsep-{tag}a", f"privsep-{tag}b"
    )
    try:
        _ip("netns", "add", made.ns_a)
        _ip("netns", "add", made.ns_b)
        # Created directly inside the namespaces: the host's network is never touched.
        _ip(
            "link", "add", made.if_a, "netns", made.ns_a, "type", "veth",
            "peer", "name", made.if_b, "netns", made.ns_b,
        )  # fmt: skip
        for ns, ifname in ((made.ns_a, made.if_a), (made.ns_b, made.if_b)):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", ifname, "up")
        yield made
    finally:
        for ns in (made.ns_a, made.ns_b):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def process(*fds: tuple[str, Resource]) -> Process:
    return Process(name="test", entry="x:main", fds=tuple(Fd(n, r) for n, r in fds))


def as_socket(fd: int) -> socket.socket:
    return socket.socket(fileno=fd)


# --- frames -----------------------------------------------------------------------


def ipv4_frame(proto: int, dport: int, payload: bytes, *, flags_frag: int = 0) -> bytes:
    if proto == 17:
        l4 = struct.pack("!HHHH", 67, dport, 8 + len(payload), 0) + payload
    else:  # TCP: a bare header with SYN
        l4 = struct.pack("!HHIIBBHHH", 1234, dport, 0, 0, 5 << 4, 0x02, 1024, 0, 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, flags_frag, 64, proto, 0,
        bytes(4), b"\xff" * 4,
    )  # fmt: skip
    return BROADCAST + SRC_MAC + b"\x08\x00" + header + l4


def arp_frame() -> bytes:
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, SRC_MAC, bytes(4), bytes(6), bytes(4))
    return BROADCAST + SRC_MAC + b"\x08\x06" + body


def send_frames(link: Link, frames: list[bytes]) -> None:
    in_netns(link.ns_b, lambda: _send_on(link.if_b, frames))


def receive_all(sock: socket.socket, quiet: float = 0.3) -> list[bytes]:
    frames = []
    sock.settimeout(quiet)
    while True:
        try:
            frames.append(sock.recv(65535))
        except TimeoutError:
            return frames


# --- packet socket -----------------------------------------------------------------


def test_filter_table_matches_the_names_the_layout_accepts() -> None:
    assert set(FILTERS) == set(_names.PACKET_FILTERS)


def test_packet_socket_receives_only_dhcp_client_frames_and_arp(link: Link) -> None:
    fds = open_resources(process(("raw", PacketFd(link.if_a, "dhcp-client", link.ns_a))))
    with as_socket(fds["raw"]) as sock:
        send_frames(
            link,
            [
                ipv4_frame(17, 69, b"udp-69"),
                ipv4_frame(6, 68, b"tcp-68"),
                ipv4_frame(17, 68, b"frag-mf", flags_frag=0x2000),
                ipv4_frame(17, 68, b"frag-offset", flags_frag=0x0010),
                ipv4_frame(17, 68, b"udp-68"),
                arp_frame(),
            ],
        )
        got = receive_all(sock)
    assert got == [ipv4_frame(17, 68, b"udp-68"), arp_frame()]


def test_packet_socket_can_send_on_its_interface(link: Link) -> None:
    fds = open_resources(process(("raw", PacketFd(link.if_a, "dhcp-client", link.ns_a))))
    seen: list[bytes] = []
    with as_socket(fds["raw"]) as sock:

        def listen_on_b() -> None:
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800)) as peer:
                peer.bind((link.if_b, 0x0800))
                sock.send(ipv4_frame(17, 67, b"egress"))
                seen.extend(f for f in receive_all(peer) if f.endswith(b"egress"))

        in_netns(link.ns_b, listen_on_b)
    assert seen == [ipv4_frame(17, 67, b"egress")]


def test_packet_socket_ignores_frames_others_transmit_on_its_interface(link: Link) -> None:
    fds = open_resources(process(("raw", PacketFd(link.if_a, "dhcp-client", link.ns_a))))
    with as_socket(fds["raw"]) as sock:
        # Another sender in the same namespace (as the host's own stack would) transmits
        # frames the filter accepts: they leave the interface but are not looped to us.
        in_netns(link.ns_a, lambda: _send_on(link.if_a, [arp_frame(), ipv4_frame(17, 68, b"x")]))
        assert receive_all(sock) == []


def _send_on(ifname: str, frames: list[bytes]) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sender:
        sender.bind((ifname, 0))
        for frame in frames:
            sender.send(frame)


def test_packet_filter_cannot_be_detached_or_replaced(link: Link) -> None:
    fds = open_resources(process(("raw", PacketFd(link.if_a, "dhcp-client", link.ns_a))))
    with as_socket(fds["raw"]) as sock:
        with pytest.raises(PermissionError) as detach:
            sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
        assert detach.value.errno == errno.EPERM
        accept_all = ((0x06, 0, 0, 0xFFFFFFFF),)
        with pytest.raises(PermissionError) as replace:
            attach_filter(sock, accept_all)
        assert replace.value.errno == errno.EPERM
        assert SO_ATTACH_FILTER == 26


def test_packet_socket_is_bound_to_the_interface(link: Link) -> None:
    fds = open_resources(process(("raw", PacketFd(link.if_a, "dhcp-client", link.ns_a))))
    with as_socket(fds["raw"]) as sock:
        ifindex = sock.getsockname()[0]
        assert ifindex == link.if_a


def test_unknown_interface_is_a_one_line_resource_error(link: Link) -> None:
    with pytest.raises(ResourceError) as info:
        open_resources(process(("raw", PacketFd("privsep-nope0", "dhcp-client", link.ns_a))))
    assert str(info.value) == f"fd raw: no interface privsep-nope0 in netns {link.ns_a}"


def test_unknown_netns_is_a_one_line_resource_error() -> None:
    with pytest.raises(ResourceError) as info:
        open_resources(process(("route", NetlinkFd(netns="privsep-no-such-ns"))))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("fd route: no network namespace 'privsep-no-such-ns'")


# --- netlink ----------------------------------------------------------------------

RTM_GETLINK, RTM_NEWLINK, NLMSG_DONE, NLMSG_ERROR = 18, 16, 3, 2
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFLA_IFNAME = 3


def link_names(sock: socket.socket) -> set[str]:
    ifinfo = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
    header = struct.pack("=IHHII", 16 + len(ifinfo), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
    sock.send(header + ifinfo)
    names: set[str] = set()
    while True:
        data = sock.recv(65536)
        offset = 0
        while offset < len(data):
            length, kind, _, _, _ = struct.unpack_from("=IHHII", data, offset)
            if kind == NLMSG_DONE:
                return names
            assert kind != NLMSG_ERROR
            if kind == RTM_NEWLINK:
                attr = offset + 32  # nlmsghdr + ifinfomsg
                while attr < offset + length:
                    attr_len, attr_type = struct.unpack_from("=HH", data, attr)
                    if attr_type == IFLA_IFNAME:
                        names.add(data[attr + 4 : attr + attr_len].rstrip(b"\0").decode())
                    attr += (attr_len + 3) & ~3
            offset += (length + 3) & ~3


def test_netlink_socket_lists_the_links_of_its_netns(link: Link) -> None:
    fds = open_resources(process(("route", NetlinkFd(netns=link.ns_a))))
    with as_socket(fds["route"]) as sock:
        assert link_names(sock) == {"lo", link.if_a}


def test_netlink_socket_without_netns_is_in_the_callers_netns(link: Link) -> None:
    fds = open_resources(process(("route", NetlinkFd())))
    with as_socket(fds["route"]) as sock:
        names = link_names(sock)
    assert "lo" in names
    assert link.if_a not in names


# --- listen, connect, file --------------------------------------------------------


def test_listen_and_connect_sockets_work_inside_the_netns(link: Link) -> None:
    first = open_resources(process(("http", ListenFd("tcp", "127.0.0.1", 0, link.ns_a))))
    with as_socket(first["http"]) as server:
        port = server.getsockname()[1]
        second = open_resources(process(("up", ConnectFd("tcp", "127.0.0.1", port, link.ns_a))))
        with as_socket(second["up"]) as client:
            conn, _ = server.accept()
            with conn:
                client.sendall(b"ping")
                assert conn.recv(4) == b"ping"
    # The same port on the host's loopback is not that listener.
    with pytest.raises(ResourceError, match=r"^fd up: cannot connect to tcp 127\.0\.0\.1:"):
        open_resources(process(("up", ConnectFd("tcp", "127.0.0.1", port))))


def test_udp_listen_and_connect(link: Link) -> None:
    first = open_resources(process(("dns", ListenFd("udp", "127.0.0.1", 0, link.ns_a))))
    with as_socket(first["dns"]) as server:
        port = server.getsockname()[1]
        second = open_resources(process(("up", ConnectFd("udp", "127.0.0.1", port, link.ns_a))))
        with as_socket(second["up"]) as client:
            client.send(b"query")
            server.settimeout(2)
            assert server.recv(16) == b"query"


def test_file_fds_open_with_their_mode(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.write_text("old")
    fds = open_resources(
        process(
            ("r", FileFd(str(path), "r")),
            ("a", FileFd(str(path), "a")),
            ("new", FileFd(str(tmp_path / "new"), "w")),
        )
    )
    assert os.read(fds["r"], 10) == b"old"
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.write(fds["r"], b"x")
    os.write(fds["a"], b"+more")
    os.write(fds["new"], b"fresh")
    for fd in fds.values():
        os.close(fd)
    assert path.read_text() == "old+more"
    assert (tmp_path / "new").read_text() == "fresh"


def test_fds_are_not_inheritable_and_keep_layout_order(tmp_path: Path, link: Link) -> None:
    fds = open_resources(
        process(
            ("b", FileFd(str(tmp_path / "b"), "w")),
            ("route", NetlinkFd(netns=link.ns_a)),
            ("a", FileFd(str(tmp_path / "a"), "w")),
        )
    )
    assert list(fds) == ["b", "route", "a"]
    assert not any(os.get_inheritable(fd) for fd in fds.values())
    for fd in fds.values():
        os.close(fd)


def test_a_failure_closes_what_was_already_opened(tmp_path: Path) -> None:
    before = set(Path("/proc/self/fd").iterdir())
    with pytest.raises(ResourceError) as info:
        open_resources(
            process(
                ("ok", FileFd(str(tmp_path / "ok"), "w")),
                ("missing", FileFd(str(tmp_path / "no" / "such"), "r")),
            )
        )
    assert str(info.value) == (
        f"fd missing: cannot open {tmp_path}/no/such (mode r) in the current netns: "
        "no such file or directory"
    )
    assert set(Path("/proc/self/fd").iterdir()) == before


def test_a_busy_listen_address_is_a_one_line_resource_error(link: Link) -> None:
    first = open_resources(process(("http", ListenFd("tcp", "127.0.0.1", 0, link.ns_a))))
    with as_socket(first["http"]) as server:
        port = server.getsockname()[1]
        with pytest.raises(ResourceError) as info:
            open_resources(process(("again", ListenFd("tcp", "127.0.0.1", port, link.ns_a))))
    assert str(info.value) == (
        f"fd again: cannot listen on tcp 127.0.0.1:{port} in netns {link.ns_a}: "
        "address already in use"
    )
