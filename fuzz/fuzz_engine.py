"""Fuzz the sans-IO DHCP client: arbitrary frames, timer ticks and calls, in any order.

Run:   python fuzz/fuzz_engine.py -runs=100000 fuzz/corpus/engine
Seeds: python fuzz/fuzz_engine.py --make-corpus fuzz/corpus/engine

An input is a script of records `[op:1][length:2][data:length]`:
  op % 4 == 0  deliver `data` as a frame;
  op % 4 == 1  advance the clock by data's first 2 bytes (tenths of a second)
               and run handle_timer, or jump to the next deadline if they are odd;
  op % 4 == 2  deliver `data` as a frame with the IPv4/UDP xid patched to the
               client's current exchange and the UDP checksum zeroed (so mutated
               replies reach the deep states instead of failing the xid check);
  op % 4 == 3  call release / report_conflict / stop / start (data[0] % 4);
  frames are delivered with checksum_not_ready when op & 4.
The first byte of the input picks the config (ARP probing, rapid commit, IPv6-only,
a saved lease). The rule checked: nothing but the engine's own behaviour happens,
i.e. no exception escapes and after handle_timer the next deadline is in the future.
"""

from __future__ import annotations

import random
import struct
import sys
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from privsep.services.dhcp._config import ClientConfig
    from privsep.services.dhcp._engine import Client
    from privsep.services.dhcp._frames import (
        ARP_REPLY,
        BROADCAST_MAC,
        ArpPacket,
        UdpFrame,
        encode_arp_frame,
        encode_udp_frame,
    )
    from privsep.services.dhcp._lease import Lease
    from privsep.services.dhcp._message import Message, encode_message
    from privsep.services.dhcp._options import ClasslessRoute, MessageType, encode_option
    from privsep.services.dhcp._state import State

CLIENT_MAC = bytes.fromhex("02000000c001")
SERVER_MAC = bytes.fromhex("02000000aa01")
SERVER_IP = IPv4Address("192.0.2.1")
ADDRESS = IPv4Address("192.0.2.10")
_XID_OFFSET = 14 + 20 + 8 + 4  # Ethernet + IPv4 (no options) + UDP + op/htype/hlen/hops
_UDP_CSUM_OFFSET = 14 + 20 + 6


def _saved_lease() -> Lease:
    return Lease(
        address=ADDRESS,
        prefix_len=24,
        server_id=SERVER_IP,
        server_mac=SERVER_MAC,
        lease_time=120,
        t1=60.0,
        t2=105.0,
        acquired_at=0.0,
    )


def _client(flags: int) -> Client:
    config = ClientConfig(
        mac=CLIENT_MAC,
        arp_probe=bool(flags & 1),
        rapid_commit=bool(flags & 2),
        ipv6_only_preferred=bool(flags & 4),
        discover_tries=3 if flags & 16 else None,
        min_retry=5.0,
    )
    return Client(
        config, rng=random.Random(flags), saved_lease=_saved_lease() if flags & 8 else None
    )


def _records(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    pos = 1
    while pos + 3 <= len(data):
        op, length = data[pos], int.from_bytes(data[pos + 1 : pos + 3], "big")
        out.append((op, data[pos + 3 : pos + 3 + length]))
        pos += 3 + length
    return out


def run(data: bytes) -> None:
    """Execute one fuzz input; raises only if the engine misbehaves."""
    if not data:
        return
    client = _client(data[0])
    now = 0.0
    client.start(now)
    for op, body in _records(data):
        kind = op % 4
        if kind == 1:
            ticks = int.from_bytes(body[:2].ljust(2, b"\x00"), "big")
            timer = client.get_timer()
            now = max(now, timer) if ticks & 1 and timer is not None else now + ticks / 10
            client.handle_timer(now)
            after = client.get_timer()
            if after is not None and after <= now:
                raise AssertionError(f"timer {after} not after {now} in {client.state}")
        elif kind == 3:
            call = body[0] % 4 if body else 0
            if call == 0:
                client.release(now)
            elif call == 1:
                client.report_conflict(now)
            elif call == 2:
                client.stop()
            elif client.state is State.STOPPED:
                client.start(now)
        else:
            frame = body
            xid = client._xid
            if kind == 2 and xid is not None and len(frame) >= _XID_OFFSET + 4:
                frame = bytearray(frame)
                frame[_XID_OFFSET : _XID_OFFSET + 4] = xid.to_bytes(4, "big")
                frame[_UDP_CSUM_OFFSET : _UDP_CSUM_OFFSET + 2] = b"\x00\x00"
                frame = bytes(frame)
            client.receive_frame(frame, now, checksum_not_ready=bool(op & 4))
        client.frames_to_send()
        while client.next_event() is not None:
            pass


def test_one_input(data: bytes) -> None:
    run(data)


# -- seed corpus ----------------------------------------------------------------------


def _reply(kind: MessageType, options: dict[int, object]) -> bytes:
    values: dict[int, object] = {53: kind, 54: SERVER_IP, 51: 120, 1: IPv4Address("255.255.255.0")}
    values.update(options)
    encoded = tuple((code, encode_option(code, v)) for code, v in values.items())  # type: ignore[arg-type]
    message = Message(
        op=2,
        xid=0,
        chaddr=CLIENT_MAC,
        yiaddr=ADDRESS if kind is not MessageType.NAK else IPv4Address(0),
        options=encoded,
    )
    frame = UdpFrame(
        SERVER_MAC,
        BROADCAST_MAC,
        SERVER_IP,
        IPv4Address("255.255.255.255"),
        67,
        68,
        encode_message(message),
    )
    return encode_udp_frame(frame)


def _script(flags: int, records: list[tuple[int, bytes]]) -> bytes:
    return bytes([flags]) + b"".join(
        struct.pack("!BH", op, len(body)) + body for op, body in records
    )


def make_corpus(directory: Path) -> None:
    offer = _reply(MessageType.OFFER, {})
    ack = _reply(MessageType.ACK, {58: 30, 59: 50, 3: (SERVER_IP,), 6: (SERVER_IP,)})
    nak = _reply(MessageType.NAK, {56: "no"})
    broad = (
        ClasslessRoute(IPv4Network("0.0.0.0/1"), SERVER_IP),
        ClasslessRoute(IPv4Network("10.0.0.0/8"), IPv4Address(0)),
    )
    routes = _reply(MessageType.ACK, {121: broad})
    rapid = _reply(MessageType.ACK, {80: True})
    v6 = _reply(MessageType.OFFER, {108: 0})
    other = bytes.fromhex("02000000bb02")
    arp = encode_arp_frame(
        BROADCAST_MAC, other, ArpPacket(ARP_REPLY, other, ADDRESS, other, ADDRESS)
    )
    tick = (1, b"\x00\x01")  # jump to the next deadline
    seeds = {
        "dora": (0, [(2, offer), (2, ack), tick, tick, tick, (2, ack), tick, tick, tick]),
        "dora-probe": (1, [(2, offer), (2, ack), tick, tick, (0, arp), tick, tick]),
        "nak": (0, [(2, offer), (2, nak), tick, (2, offer)]),
        "rapid": (2, [(2, rapid), tick, (3, b"\x00")]),
        "reboot": (8, [(2, ack), tick, tick, (2, nak), tick]),
        "reboot-silence": (8, [tick, tick, tick, tick, tick, tick]),
        "v6only": (4, [(2, v6), tick]),
        "routes": (0, [(2, offer), (2, routes), (3, b"\x01"), tick]),
        "leasefail": (16, [tick, tick, tick, tick, tick]),
        "stop-start": (0, [(2, offer), (2, ack), (3, b"\x02"), (3, b"\x03"), (2, nak)]),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, (flags, records) in seeds.items():
        (directory / name).write_bytes(_script(flags, records))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--make-corpus":
        make_corpus(Path(sys.argv[2]))
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
