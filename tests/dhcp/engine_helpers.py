"""A fake DHCP server and a scenario driver for the sans-IO engine's tests.

Everything goes through the real codec: the client's frames are decoded with
`decode_udp_frame`/`decode_message`, the server's answers are built with
`encode_message`/`encode_udp_frame`, so a scenario reads like a packet trace.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from privsep.services.dhcp._config import ClientConfig
from privsep.services.dhcp._engine import Client
from privsep.services.dhcp._events import Event, StateChanged
from privsep.services.dhcp._frames import (
    ARP_REPLY,
    ARP_REQUEST,
    BROADCAST_MAC,
    ETH_P_ARP,
    ArpPacket,
    UdpFrame,
    decode_arp_frame,
    decode_udp_frame,
    encode_arp_frame,
    encode_udp_frame,
)
from privsep.services.dhcp._lease import Lease
from privsep.services.dhcp._message import Message, decode_message, encode_message
from privsep.services.dhcp._options import MessageType, OptionValue, encode_option

CLIENT_MAC = bytes.fromhex("02000000c001")
SERVER_MAC = bytes.fromhex("02000000aa01")
OTHER_MAC = bytes.fromhex("02000000bb02")
SERVER_IP = IPv4Address("192.0.2.1")
OTHER_SERVER_IP = IPv4Address("192.0.2.2")
ADDRESS = IPv4Address("192.0.2.10")
START = 1000.0


class FixedRng:
    """A deterministic `Rng`: uniform(a, b) is a + (b - a) * fraction; xids count up.

    fraction 0.5 makes the ±1 s retransmission jitter exactly 0, so the
    schedule is 4, 8, 16, 32, 64, 64 s and tests can assert exact deadlines.
    """

    def __init__(self, fraction: float = 0.5, first_xid: int = 0x1000) -> None:
        self.fraction = fraction
        self.next_bits = first_xid

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction

    def getrandbits(self, k: int, /) -> int:
        value = self.next_bits & ((1 << k) - 1)
        self.next_bits += 1
        return value


@dataclass(frozen=True)
class DhcpOut:
    """A DHCP frame the client sent, decoded."""

    frame: UdpFrame
    message: Message

    @property
    def kind(self) -> MessageType | None:
        return self.message.message_type


@dataclass(frozen=True)
class ArpOut:
    """An ARP frame the client sent, decoded."""

    dst: bytes
    src: bytes
    arp: ArpPacket


def decode_sent(frame: bytes) -> DhcpOut | ArpOut:
    if int.from_bytes(frame[12:14], "big") == ETH_P_ARP:
        dst, src, arp = decode_arp_frame(frame)
        return ArpOut(dst, src, arp)
    udp = decode_udp_frame(frame)
    return DhcpOut(udp, decode_message(udp.payload))


def mask(prefix: int) -> IPv4Address:
    return IPv4Network(f"0.0.0.0/{prefix}").netmask


@dataclass
class FakeServer:
    """Answers a client's message with real encoded frames.

    `options` are the OptionValues every OFFER/ACK carries (override or remove
    one per reply with `options={code: value or None}`).
    """

    ip: IPv4Address = SERVER_IP
    mac: bytes = SERVER_MAC
    address: IPv4Address = ADDRESS
    options: dict[int, OptionValue] = field(
        default_factory=lambda: {
            51: 3600,
            1: mask(24),
            3: (SERVER_IP,),
            6: (IPv4Address("192.0.2.53"),),
        }
    )

    def reply(
        self,
        request: Message,
        kind: MessageType,
        *,
        options: dict[int, OptionValue | None] | None = None,
        raw: Iterable[tuple[int, bytes]] = (),
        server_id: bool = True,
        lease_options: bool = True,
        dst_mac: bytes | None = None,
        src_port: int = 67,
        dst_port: int = 68,
        wire_options: bytes = b"",
        **fields: Any,
    ) -> bytes:
        values: dict[int, OptionValue | None] = {53: kind}
        if server_id:
            values[54] = self.ip
        if lease_options and kind is not MessageType.NAK:
            values.update(self.options)
        values.update(options or {})
        encoded = [(code, encode_option(code, v)) for code, v in values.items() if v is not None]
        encoded += list(raw)
        message = Message(
            op=2,
            xid=request.xid,
            chaddr=request.chaddr,
            yiaddr=self.address if kind is not MessageType.NAK else IPv4Address(0),
            siaddr=self.ip,
            options=tuple(encoded),
        )
        if fields:
            message = replace(message, **fields)
        payload = encode_message(message, max_size=65000)
        # `wire_options`: raw TLV bytes put first in the options area, so a test can
        # send what the encoder refuses to produce (malformed options).
        payload = payload[:240] + wire_options + payload[240:]
        frame = UdpFrame(
            src_mac=self.mac,
            dst_mac=dst_mac if dst_mac is not None else BROADCAST_MAC,
            src_ip=self.ip,
            dst_ip=IPv4Address("255.255.255.255"),
            src_port=src_port,
            dst_port=dst_port,
            payload=payload,
        )
        return encode_udp_frame(frame)

    def offer(self, request: Message, **kw: Any) -> bytes:
        return self.reply(request, MessageType.OFFER, **kw)

    def ack(self, request: Message, **kw: Any) -> bytes:
        return self.reply(request, MessageType.ACK, **kw)

    def nak(self, request: Message, **kw: Any) -> bytes:
        return self.reply(request, MessageType.NAK, **kw)


def arp_frame(op: int, sender_mac: bytes, sender_ip: IPv4Address, target_ip: IPv4Address) -> bytes:
    arp = ArpPacket(op, sender_mac, sender_ip, bytes(6), target_ip)
    return encode_arp_frame(BROADCAST_MAC, sender_mac, arp)


def arp_reply_from(mac: bytes, ip: IPv4Address) -> bytes:
    return arp_frame(ARP_REPLY, mac, ip, ip)


def arp_probe_from(mac: bytes, target: IPv4Address) -> bytes:
    return arp_frame(ARP_REQUEST, mac, IPv4Address(0), target)


def config(**kw: Any) -> ClientConfig:
    """A test config: our MAC, ARP probing off unless asked for."""
    kw.setdefault("arp_probe", False)
    kw.setdefault("mac", CLIENT_MAC)
    return ClientConfig(**kw)


def make_lease(**kw: Any) -> Lease:
    values: dict[str, Any] = {
        "address": ADDRESS,
        "prefix_len": 24,
        "server_id": SERVER_IP,
        "server_mac": SERVER_MAC,
        "lease_time": 3600,
        "t1": 1800.0,
        "t2": 3150.0,
        "acquired_at": START,
        "routers": (SERVER_IP,),
        "dns": (IPv4Address("192.0.2.53"),),
    }
    values.update(kw)
    return Lease(**values)


class Scenario:
    """A Client on an explicit clock, with helpers to read what it did."""

    def __init__(
        self,
        cfg: ClientConfig | None = None,
        *,
        saved_lease: Lease | None = None,
        rng: Any = None,
        now: float = START,
    ) -> None:
        self.config = cfg or config()
        self.client = Client(self.config, rng=rng or FixedRng(), saved_lease=saved_lease)
        self.now = now
        self.server = FakeServer()

    # -- driving -----------------------------------------------------------------

    def start(self) -> None:
        self.client.start(self.now)

    def at(self, when: float) -> None:
        """Move the clock to `when` (no timers run)."""
        assert when >= self.now
        self.now = when

    def fire(self) -> float:
        """Jump to the next deadline and handle it; returns that deadline."""
        deadline = self.client.get_timer()
        assert deadline is not None, "no timer armed"
        self.at(deadline)
        self.client.handle_timer(self.now)
        return deadline

    def deliver(self, frame: bytes, at: float | None = None, *, csum_partial: bool = False) -> None:
        if at is not None:
            self.at(at)
        self.client.receive_frame(frame, self.now, checksum_not_ready=csum_partial)

    # -- observing -----------------------------------------------------------------

    def sent(self) -> list[DhcpOut | ArpOut]:
        return [decode_sent(f) for f in self.client.frames_to_send()]

    def sent_dhcp(self) -> list[DhcpOut]:
        out = self.sent()
        assert all(isinstance(o, DhcpOut) for o in out), out
        return [o for o in out if isinstance(o, DhcpOut)]

    def last(self, kind: MessageType) -> Message:
        """The one message the client just sent, which must be of `kind`."""
        out = self.sent_dhcp()
        assert len(out) == 1, out
        assert out[0].kind is kind, (out[0].kind, kind)
        return out[0].message

    def events(self, *, states: bool = False) -> list[Event]:
        out = []
        while (event := self.client.next_event()) is not None:
            if states or not isinstance(event, StateChanged):
                out.append(event)
        return out

    # -- whole exchanges -----------------------------------------------------------

    def bind(self, *, ack_options: dict[int, OptionValue | None] | None = None) -> Lease:
        """start → DISCOVER → OFFER (+1 s) → REQUEST → ACK (+0.5 s) → BOUND."""
        self.start()
        discover = self.last(MessageType.DISCOVER)
        self.deliver(self.server.offer(discover), at=self.now + 1.0)
        request = self.last(MessageType.REQUEST)
        self.deliver(self.server.ack(request, options=ack_options), at=self.now + 0.5)
        lease = self.client.lease
        assert lease is not None, self.events()
        return lease


class EngineLog(logging.Handler):
    """Records what dhcp-engine's driver logs (the `engine_log` fixture installs it)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def events(self, level: int = logging.DEBUG) -> list[tuple[str, dict[str, Any]]]:
        return [
            (r.getMessage(), dict(getattr(r, "fields", {})))
            for r in self.records
            if r.levelno >= level
        ]
