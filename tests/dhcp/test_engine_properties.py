"""Property tests: any mix of frames, timer ticks and calls never raises out of the engine,
and its invariants hold after every step.

Frames are drawn from three sources so the search reaches deep states: raw bytes,
plausible server replies to the client's last message (right xid, random type,
address and options, sometimes one byte flipped), and ARP for the probed address.
"""

from __future__ import annotations

import random
from ipaddress import IPv4Address

from engine_helpers import (
    ADDRESS,
    OTHER_MAC,
    OTHER_SERVER_IP,
    FakeServer,
    arp_probe_from,
    arp_reply_from,
    config,
    decode_sent,
    make_lease,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privsep.services.dhcp._engine import Client
from privsep.services.dhcp._message import Message
from privsep.services.dhcp._options import MessageType
from privsep.services.dhcp._state import State

HOLDING = {State.BOUND, State.RENEWING, State.REBINDING}
EXCHANGING = {State.SELECTING, State.REQUESTING, State.REBOOTING, State.RENEWING, State.REBINDING}

option_values = st.fixed_dictionaries(
    {},
    optional={
        51: st.sampled_from([0, 1, 2, 60, 3600, 0xFFFFFFFF]),
        58: st.integers(0, 5000),
        59: st.integers(0, 5000),
        1: st.sampled_from([IPv4Address("255.255.255.0"), IPv4Address("255.0.255.0")]),
        80: st.just(True),
        108: st.integers(0, 1000),
        56: st.text(max_size=10).filter(lambda t: "\x00" not in t),
        54: st.sampled_from([None, OTHER_SERVER_IP]),
    },
)


def _check_invariants(client: Client, now: float, after_timer: bool) -> None:
    state = client.state
    timer = client.get_timer()
    if after_timer:
        assert timer is None or timer > now
    assert (client.lease is not None) == (state in HOLDING)
    if state is State.STOPPED:
        assert timer is None
    else:
        assert timer is not None or (client.lease is not None and client.lease.infinite)
    if state in EXCHANGING:
        assert client._xid is not None
    if state is State.PROBING:
        assert client.pending_lease is not None
    for frame in client.frames_to_send():
        decode_sent(frame)  # everything we send is well-formed


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_any_input_sequence_keeps_invariants(data: st.DataObject, seed: int) -> None:
    arp_probe, rapid, v6only, saved = (data.draw(st.booleans()) for _ in range(4))
    cfg = config(
        arp_probe=arp_probe,
        rapid_commit=rapid,
        ipv6_only_preferred=v6only,
        min_retry=5.0,
        discover_tries=data.draw(st.none() | st.integers(1, 3)),
    )
    lease = make_lease(acquired_at=0.0, lease_time=120, t1=60.0, t2=105.0) if saved else None
    client = Client(cfg, rng=random.Random(seed), saved_lease=lease)
    now = 0.0
    client.start(now)
    last: Message | None = None
    servers = [FakeServer(), FakeServer(ip=OTHER_SERVER_IP, mac=OTHER_MAC)]
    for _ in range(data.draw(st.integers(1, 40))):
        for frame in client.frames_to_send():
            out = decode_sent(frame)
            if hasattr(out, "message"):
                last = out.message  # type: ignore[union-attr]
        action = data.draw(
            st.sampled_from(["reply", "reply", "tick", "tick", "raw", "arp", "call"])
        )
        after_timer = False
        if action == "tick":
            timer = client.get_timer()
            step = data.draw(st.floats(0.0, 200.0))
            now = max(now, timer if timer is not None and data.draw(st.booleans()) else now + step)
            client.handle_timer(now)
            after_timer = True
        elif action == "reply" and last is not None:
            server = data.draw(st.sampled_from(servers))
            server.address = data.draw(
                st.sampled_from([ADDRESS, IPv4Address("192.0.2.11"), IPv4Address(0)])
            )
            kind = data.draw(
                st.sampled_from(
                    [MessageType.OFFER, MessageType.ACK, MessageType.NAK, MessageType.FORCERENEW]
                )
            )
            frame = bytearray(server.reply(last, kind, options=data.draw(option_values)))
            if data.draw(st.booleans()) and data.draw(st.booleans()):
                index = data.draw(st.integers(0, len(frame) - 1))
                frame[index] ^= data.draw(st.integers(1, 255))
            client.receive_frame(bytes(frame), now)
        elif action == "raw":
            client.receive_frame(data.draw(st.binary(max_size=400)), now)
        elif action == "arp":
            mac = data.draw(st.sampled_from([OTHER_MAC, cfg.mac]))
            make = data.draw(st.sampled_from([arp_reply_from, arp_probe_from]))
            client.receive_frame(make(mac, ADDRESS), now)
        else:
            call = data.draw(st.sampled_from(["release", "conflict", "stop", "start"]))
            if call == "release":
                client.release(now)
            elif call == "conflict":
                client.report_conflict(now)
            elif call == "stop":
                client.stop()
            elif client.state is State.STOPPED:
                client.start(now)
        _check_invariants(client, now, after_timer)
        while client.next_event() is not None:
            pass


@settings(max_examples=300, deadline=None)
@given(frames=st.lists(st.binary(max_size=600), max_size=10), ticks=st.lists(st.floats(0, 1e5)))
def test_arbitrary_bytes_and_ticks_never_raise(frames: list[bytes], ticks: list[float]) -> None:
    client = Client(config(arp_probe=True), rng=random.Random(0))
    client.start(0.0)
    now = 0.0
    for frame in frames:
        client.receive_frame(frame, now)
    for tick in sorted(ticks):
        now = max(now, tick)
        client.handle_timer(now)
        _check_invariants(client, now, after_timer=True)
