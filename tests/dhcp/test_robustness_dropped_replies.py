"""A reply to our own exchange that the engine refuses is told, once per reason and state.

QA saw an OFFER with lease time 0 leave the client in SELECTING with nothing in the
log above DEBUG. `PacketDropped` still reports every dropped frame (noise: the packet
socket sees every client's replies); `Client.dropped_replies()` holds those worth a
log line, and `dhcp-engine` logs them as `reply-dropped`.
"""

from __future__ import annotations

import asyncio
import logging
from ipaddress import IPv4Address
from typing import Any

from engine_helpers import (
    OTHER_SERVER_IP,
    SERVER_IP,
    DhcpOut,
    EngineLog,
    Scenario,
    config,
    decode_sent,
)

from privsep.services.dhcp._events import PacketDropped
from privsep.services.dhcp._options import MessageType
from privsep.services.dhcp._proc_engine import Driver
from privsep.services.dhcp._state import State

D, R = MessageType.DISCOVER, MessageType.REQUEST


def selecting() -> tuple[Scenario, Any]:
    s = Scenario()
    s.start()
    return s, s.last(D)


def test_offer_with_lease_time_0_is_a_dropped_reply_with_its_reason() -> None:
    s, discover = selecting()
    s.deliver(s.server.offer(discover, options={51: 0}))
    assert s.events() == [PacketDropped("OFFER with lease time 0")]
    assert s.client.dropped_replies() == [(State.SELECTING, "OFFER with lease time 0")]
    assert s.client.dropped_replies() == []  # taken
    assert s.client.state is State.SELECTING


def test_each_reason_is_told_once_per_state_numbers_aside() -> None:
    s, discover = selecting()
    for _ in range(50):
        s.deliver(s.server.offer(discover, options={51: 0}))
    # The same kind of refusal with other numbers in it is the same reason.
    s.deliver(s.server.offer(discover, yiaddr=IPv4Address("224.0.0.1")))
    s.deliver(s.server.offer(discover, yiaddr=IPv4Address("239.1.2.3")))
    assert s.client.dropped_replies() == [
        (State.SELECTING, "OFFER with lease time 0"),
        (State.SELECTING, "OFFER of unusable address 224.0.0.1"),
    ]
    # Every frame is still a PacketDropped event.
    assert len([e for e in s.events() if isinstance(e, PacketDropped)]) == 52


def test_the_same_reason_in_another_state_is_told_again() -> None:
    s, discover = selecting()
    s.deliver(s.server.offer(discover))  # REQUESTING now
    request = s.last(R)
    s.deliver(s.server.offer(discover))  # a second OFFER of the exchange: late, dropped
    s.deliver(s.server.ack(request, server_id=False, options={54: OTHER_SERVER_IP}))
    assert s.client.dropped_replies() == [
        (State.REQUESTING, "OFFER in state REQUESTING"),
        (State.REQUESTING, f"ACK from {OTHER_SERVER_IP}, we talk to {SERVER_IP}"),
    ]
    s.deliver(s.server.ack(request, options={51: 0}))
    assert s.client.dropped_replies() == [(State.REQUESTING, "ACK with lease time 0")]


def test_a_malformed_option_in_our_reply_is_told() -> None:
    s, discover = selecting()
    lease_time_of_2_bytes = bytes([51, 2, 0, 1])
    s.deliver(s.server.offer(discover, options={51: None}, wire_options=lease_time_of_2_bytes))
    [(state, reason)] = s.client.dropped_replies()
    assert state is State.SELECTING and "option 51" in reason


def test_frames_that_are_not_our_replies_are_not_told() -> None:
    s, discover = selecting()
    s.deliver(s.server.offer(discover, xid=discover.xid ^ 1))  # another exchange
    s.deliver(s.server.offer(discover, chaddr=bytes(6) + b"\x01" * 10))  # another client
    s.deliver(b"\x00" * 60)  # not even a frame for us
    s.deliver(s.server.offer(discover, dst_port=67))
    assert len(s.events()) == 4
    assert s.client.dropped_replies() == []


def test_a_hostile_network_cannot_flood_the_told_reasons() -> None:
    s, discover = selecting()
    # Hundreds of refusals whose texts all differ (addresses, lengths): told once per kind.
    for i in range(300):
        yiaddr = IPv4Address(int(IPv4Address("224.0.0.0")) + i * 7919)
        s.deliver(s.server.offer(discover, yiaddr=yiaddr))
        size = 1 + i % 3
        bad = bytes([51, size, *([0] * size)])
        s.deliver(s.server.offer(discover, options={51: None}, wire_options=bad))
    told = s.client.dropped_replies()
    assert [state for state, _ in told] == [State.SELECTING] * 2, told
    assert len(s.events()) == 600


# -- the driver logs them ------------------------------------------------------------------


class _Sent:
    sent = True


class _Link:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    async def send(self, frame: bytes, *args: object) -> _Sent:
        self.frames.append(frame)
        return _Sent()


def test_dhcp_engine_logs_a_dropped_reply_at_info_once(engine_log: EngineLog) -> None:
    s = Scenario(config())
    link = _Link()
    driver = Driver(s.client, link, None, {"interface": "eth0"}, fresh=False)

    async def body() -> None:
        await driver._step(driver._start)
        [sent] = [decode_sent(frame) for frame in link.frames]
        assert isinstance(sent, DhcpOut) and sent.kind is D
        discover = sent.message
        for _ in range(3):
            offer = s.server.offer(discover, options={51: 0})
            await driver._step(driver._receive, offer, False)

    asyncio.run(body())
    told = [fields for event, fields in engine_log.events(logging.INFO) if event == "reply-dropped"]
    assert told == [{"state": "SELECTING", "reason": "OFFER with lease time 0"}]
    debug = [e for e, _ in engine_log.events() if e == "packet-dropped"]
    assert len(debug) == 3
