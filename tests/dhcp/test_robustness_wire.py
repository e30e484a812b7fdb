"""dhcp-network's packet socket when its interface goes down, or goes away.

A link that is down gives ENETDOWN and comes back; an interface that was deleted
(or re-created under the same name: a new index) never does, and the socket would
fail every send with ENXIO forever. `Wire.gone` tells the two apart, so that
dhcp-network can exit and the supervisor open a new socket by name.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from netns_helpers import veth_netns

from privsep.sandbox._resources import in_netns
from privsep.services.dhcp._proc_network import Wire

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]

FRAME = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + b"\x00" * 50


class _Ledger:
    def observe(self, frame: bytes) -> bool:
        return False


class _PermitAll:
    """The egress policy is tested elsewhere; here every frame may go."""

    ledger = _Ledger()

    def permit(self, frame: bytes, **kwargs: Any) -> bool:
        return True


def ip(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True)


def ifindex(ns: str, name: str) -> int:
    out = subprocess.run(
        ["ip", "-n", ns, "-j", "link", "show", "dev", name],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(json.loads(out)[0]["ifindex"])


def packet_socket(ns: str, name: str) -> socket.socket:
    made: list[socket.socket] = []

    def make() -> None:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        sock.bind((name, 0x0003))  # ETH_P_ALL
        made.append(sock)

    in_netns(ns, make, what="packet test socket")
    return made[0]


@pytest.fixture
def wire_in_netns() -> Iterator[tuple[str, Wire]]:
    with veth_netns("privsep-wire") as (ns, index):
        sock = packet_socket(ns, "pa0")
        with sock:
            yield ns, Wire(sock, _PermitAll(), interface="pa0", ifindex=index)  # type: ignore[arg-type]


async def _pause(seconds: float = 0.2) -> None:
    """Let the loop run the socket's reader for a while."""
    await asyncio.sleep(seconds)


def _records() -> tuple[list[logging.LogRecord], logging.Handler]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    return records, handler


def test_a_link_that_is_down_is_not_gone(wire_in_netns: tuple[str, Wire]) -> None:
    ns, wire = wire_in_netns

    async def body() -> list[bool]:
        wire.start()
        ip(ns, "link", "set", "pa0", "down")
        await _pause()  # the socket reports ENETDOWN to its reader
        sent_down = wire.send(FRAME, 0, 0, 0)
        ip(ns, "link", "set", "pa0", "up")
        await _pause()
        return [sent_down, wire.send(FRAME, 0, 0, 0)]

    assert asyncio.run(body()) == [False, True]
    assert not wire.gone.is_set()


@pytest.mark.parametrize("recreate", [False, True], ids=["deleted", "recreated"])
def test_a_deleted_interface_is_gone_at_once_and_nothing_more_is_tried(
    wire_in_netns: tuple[str, Wire], recreate: bool
) -> None:
    ns, wire = wire_in_netns
    records, handler = _records()
    logger = logging.getLogger("privsep.services.dhcp._proc_network")
    logger.addHandler(handler)

    async def body() -> None:
        wire.start()
        ip(ns, "link", "del", "pa0")
        if recreate:  # same name, new index: still not the interface we were bound to
            ip(ns, "link", "add", "pa0", "type", "veth", "peer", "name", "pa1")
            ip(ns, "link", "set", "pa0", "up")
            assert ifindex(ns, "pa0") != wire.ifindex
        await asyncio.wait_for(wire.gone.wait(), 2)  # seen by the reader, nothing sent
        for _ in range(100):
            assert wire.send(FRAME, 0, 0, 0) is False
        await _pause()

    try:
        asyncio.run(body())
    finally:
        logger.removeHandler(handler)
    assert wire.gone.is_set() and wire.gone_reason
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []


def test_a_send_that_finds_no_device_is_gone(wire_in_netns: tuple[str, Wire]) -> None:
    ns, wire = wire_in_netns
    # No reader: the send is the first to meet the missing device (ENXIO).
    ip(ns, "link", "del", "pa0")
    assert wire.send(FRAME, 0, 0, 0) is False
    assert wire.gone.is_set() and "No such device" in wire.gone_reason
