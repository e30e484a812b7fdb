"""The sans-IO DHCPv4 client (RFC 2131, 5227, 4039, 8925, 3442, 4361).

`Client` does no I/O: it holds no socket, reads no clock and draws no random
number of its own. The driver feeds it whole Ethernet frames and the time, and
pulls frames to send and events:

    client = Client(config, rng=random.Random())
    client.start(now)
    loop:
        send every frame of client.frames_to_send()
        handle every event of iter(client.next_event, None)
        wait until client.get_timer() or a frame arrives
        client.receive_frame(frame, now) / client.handle_timer(now)

`now` is seconds on any clock the driver chooses, as long as it never goes
backwards; a driver that persists leases (`Lease.to_bytes`) must use the same
clock across restarts (wall time, or CLOCK_BOOTTIME), because a saved lease's
times are on it. Bad network input never raises: it becomes `PacketDropped`.

Decisions (docs/dhcp-engine.md has the longer story):
- Server identifier (54): required in OFFER, NAK, and in an ACK unless we know
  whom we talk to (REQUESTING: the offer's server, RENEWING: the lease's). An
  ACK or NAK naming another server than that one is dropped. In REBINDING and
  REBOOTING any server may answer (we broadcast), so any server's NAK counts.
- Lease time (51): an ACK without it takes the OFFER's value in REQUESTING and
  is dropped elsewhere. Lease time 0 is dropped (it has run out on arrival; we
  do not raise it to a floor of our own as udhcpc does); 1 is honoured;
  0xffffffff is infinite (no T1, T2 or expiry timer).
- A reply to our own exchange (our MAC, our xid) that is dropped all the same
  is also told through `dropped_replies()`: once per reason and state, numbers
  aside, 64 reasons at most, so the driver can log why without a hostile
  network flooding its log.
- Subnet mask (1): missing → the address's classful prefix (as dhcpcd does);
  non-contiguous or /0 → the ACK is dropped. yiaddr must be a usable unicast
  address, and the one we asked for.
- The lease starts when the first DHCPREQUEST of the exchange left (RFC 2131
  §4.4.1), so its timers are never later than the server's.
- NAK → `LeaseLost`, then INIT after `nak_backoff` (3 s, doubling per
  consecutive NAK up to 64 s) so a NAK loop cannot become a packet storm.
- INIT-REBOOT silence: after `reboot_tries` DHCPREQUESTs, a saved lease that
  has not expired is used as is (RFC 2131 §3.2 allows it; the T1/T2/expiry
  timers from the saved lease then revalidate it); an expired one → INIT.
- ARP frames are only looked at while PROBING; elsewhere they are ignored
  silently (the packet socket sees every ARP on the link).
- FORCERENEW (RFC 3203) is dropped: we do not implement its authentication.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Final, final

from privsep._errors import MalformedPacket
from privsep.services.dhcp import _timing
from privsep.services.dhcp._config import ClientConfig
from privsep.services.dhcp._events import (
    AddressConflict,
    Event,
    Ipv6OnlyPreferred,
    LeaseAcquired,
    LeaseExpired,
    LeaseFailed,
    LeaseLost,
    LeaseReleased,
    LeaseRenewed,
    PacketDropped,
    StateChanged,
    SuspiciousRoutes,
)
from privsep.services.dhcp._frames import (
    ARP_REQUEST,
    BROADCAST_MAC,
    ETH_P_ARP,
    ETH_P_IP,
    ArpPacket,
    UdpFrame,
    decode_arp_frame,
    decode_udp_frame,
    encode_arp_frame,
    encode_udp_frame,
)
from privsep.services.dhcp._lease import (
    MAX_ITEMS,
    MAX_STRING,
    Lease,
    MalformedLease,
    host_problem,
)
from privsep.services.dhcp._message import (
    BOOTREPLY,
    BOOTREQUEST,
    CLIENT_PORT,
    SERVER_PORT,
    Message,
    decode_message,
    encode_message,
)
from privsep.services.dhcp._options import ClasslessRoute, MessageType, OptionCode
from privsep.services.dhcp._routes_policy import split_routes, usable_router
from privsep.services.dhcp._state import TRANSITIONS, State, Trigger, next_state
from privsep.services.dhcp._timing import Rng

_ANY: Final = IPv4Address(0)
_LIMITED_BROADCAST: Final = IPv4Address("255.255.255.255")
_ZERO_MAC: Final = bytes(6)
_MAX_NAK_BACKOFF: Final = 64.0
_MAX_TIMER_STEPS: Final = 64  # handle_timer loop bound; every handler moves its deadline
_OUR_MAX_SIZE: Final = 1472  # what we send: fits a 1500-byte MTU
_HOLDING: Final = frozenset({State.BOUND, State.RENEWING, State.REBINDING})
# Dropped replies to our own exchange worth telling (`dropped_replies`): each reason
# once per state, numbers aside (an address or a length in a reason makes no new
# one), and this many reasons at most, so a hostile network cannot flood the log.
_MAX_TOLD: Final = 64
_NUMBER: Final = re.compile(r"[0-9]+")

# Never copied to Lease.extra: the route policy alone decides which routes a lease
# carries, and a hook must not see (and install) the routes it removed.
_POLICED: Final = frozenset(
    {OptionCode.CLASSLESS_STATIC_ROUTES, OptionCode.MS_CLASSLESS_STATIC_ROUTES}
)


class _Drop(Exception):
    """Raised inside the receive path to drop the frame with a reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _ReplyDrop(_Drop):
    """A drop of a reply to our own exchange (our MAC, our xid): a server answered us
    and we refuse what it said, which is worth telling (`Client.dropped_replies`)."""


@dataclass(frozen=True, slots=True)
class _Offer:
    server_id: IPv4Address
    address: IPv4Address
    lease_time: int | None


def usable_address(address: IPv4Address) -> bool:
    """A unicast address a host may be given: the actuator's rule (`_lease.host_problem`:
    not 0/8, 127/8, 169.254/16, 224/4, 240/4, broadcast), so an offer it would refuse is
    passed over here, and another server's can still be taken."""
    return host_problem(address) is None


def _prefix_from_mask(mask: IPv4Address) -> int:
    value = int(mask)
    prefix = bin(value).count("1")
    if prefix == 0 or value != (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF:
        raise _Drop(f"unusable subnet mask {mask}")
    return prefix


def _classful_prefix(address: IPv4Address) -> int:
    first = address.packed[0]
    return 8 if first < 128 else 16 if first < 192 else 24


def _without_udp_checksum(frame: bytes) -> bytes:
    """`frame` with its UDP checksum zeroed ("not computed"), if it is IPv4/UDP."""
    if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00" or frame[14 + 9] != 17:
        return frame
    offset = 14 + (frame[14] & 0x0F) * 4 + 6
    if len(frame) < offset + 2:
        return frame
    return frame[:offset] + b"\x00\x00" + frame[offset + 2 :]


def _ips(value: object) -> tuple[IPv4Address, ...]:
    if isinstance(value, tuple):
        return tuple(a for a in value if isinstance(a, IPv4Address))[:MAX_ITEMS]
    return ()


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_STRING else None


@final
class Client:
    """One DHCPv4 client on one interface. See the module docstring for the loop."""

    def __init__(self, config: ClientConfig, *, rng: Rng, saved_lease: Lease | None = None) -> None:
        self._config = config
        self._rng = rng
        self._saved = saved_lease
        self._state = State.STOPPED
        self._lease: Lease | None = None  # the lease in use (BOUND, RENEWING, REBINDING)
        self._pending: Lease | None = None  # acknowledged, being probed (PROBING)
        self._offer: _Offer | None = None
        self._hint: IPv4Address | None = config.requested_address
        self._xid: int | None = None  # replies are accepted only while an exchange runs
        self._exchange_start = 0.0
        self._first_request_at = 0.0
        self._sends = 0
        self._probes_sent = 0
        self._announces_sent = 0
        self._naks = 0
        self._conflicts = 0
        self._ip_id = 0
        # Deadlines, by name; get_timer() is the earliest.
        self._retransmit_at: float | None = None
        self._t1_at: float | None = None
        self._t2_at: float | None = None
        self._expiry_at: float | None = None
        self._probe_at: float | None = None
        self._announce_at: float | None = None
        self._restart_at: float | None = None
        self._outbox: list[bytes] = []
        self._events: deque[Event] = deque()
        self._told: set[tuple[State, str]] = set()
        self._dropped_replies: list[tuple[State, str]] = []

    # -- public API -------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def lease(self) -> Lease | None:
        """The lease in use, if any (what the interface should be configured with)."""
        return self._lease

    def start(self, now: float) -> None:
        """Begin: INIT-REBOOT with an unexpired saved lease, else INIT (DHCPDISCOVER)."""
        saved = self._saved
        if saved is not None and (saved.expires_at is None or saved.expires_at > now):
            self._transition(Trigger.START_REBOOT)
            self._new_exchange(now)
            self._transition(Trigger.REBOOT)
            self._send_reboot_request(now)
            return
        if saved is not None:
            self._hint = saved.address  # expired: still worth asking for (RFC 2131 §4.3.1)
        self._transition(Trigger.START)
        self._begin_discover(now)

    def stop(self) -> None:
        """Stop at once: no message, no event but StateChanged. start() may follow."""
        if self._state is State.STOPPED:
            return
        self._saved = self._lease or self._saved
        self._transition(Trigger.STOP)
        self._reset()

    def release(self, now: float) -> None:
        """Give the lease back (unicast DHCPRELEASE), emit LeaseReleased, stop.

        Without a lease in use this is `stop()`.
        """
        lease = self._lease
        if lease is None or self._state not in _HOLDING:
            self.stop()
            return
        message = self._message(
            MessageType.RELEASE,
            self._rng.getrandbits(32),
            ciaddr=lease.address,
            server_id=lease.server_id,
            full=False,
        )
        self._send_dhcp(message, unicast=lease)
        self._emit(LeaseReleased(lease))
        self._saved = None
        self._transition(Trigger.RELEASE)
        self._reset()

    def report_conflict(self, now: float, mac: bytes | None = None) -> bool:
        """The caller saw another host use our address: DECLINE it and start over.

        Returns False (and does nothing) when no address is being probed or used.
        """
        if self._state is State.PROBING:
            assert self._pending is not None
            self._conflict(now, self._pending, mac, lease_in_use=False)
            return True
        if self._state in _HOLDING:
            assert self._lease is not None
            self._conflict(now, self._lease, mac, lease_in_use=True)
            return True
        return False

    @property
    def pending_lease(self) -> Lease | None:
        """The acknowledged lease being probed (PROBING, RFC 5227), not yet in use.

        None in every other state. A driver needs its address while probing, before
        `lease` has it (the network process must let ARP probes for it through).
        """
        return self._pending

    def renew_now(self, now: float) -> bool:
        """Hurry along now, as udhcpc does on SIGUSR1 ("renew"). False: nothing to do.

        - STOPPED: `start(now)`.
        - INIT (waiting after a NAK, `LeaseFailed` or RFC 8925's V6ONLY_WAIT),
          SELECTING, REQUESTING: the wait or exchange is dropped and a new one
          starts with a DHCPDISCOVER now, its tries counted from 0 (udhcpc goes
          to INIT_SELECTING with a new xid and packet_num 0). SELECTING and
          REQUESTING pass through INIT (`Trigger.RENEW_NOW`).
        - BOUND: as if T1 fired now: RENEWING, unicast DHCPREQUEST; T2 and expiry
          stay where they were. An infinite lease has no T1: False.
        - RENEWING, REBINDING, REBOOTING: the next retransmission goes now, in
          the same exchange (udhcpc unicasts again even when rebinding; we keep
          broadcasting in REBINDING, as the server did not answer unicast).
        - PROBING, DECLINED: False. RFC 5227 fixes the probe timing, and the
          wait after a DHCPDECLINE is a MUST (RFC 2131 §3.1.5).

        The moved deadline runs through `handle_timer(now)`, so a later lease
        stage already due (T2, expiry) still takes precedence.
        """
        state = self._state
        if state is State.STOPPED:
            self.start(now)
            return True
        if state in (State.INIT, State.SELECTING, State.REQUESTING):
            if state is not State.INIT:
                self._transition(Trigger.RENEW_NOW)
            self._retransmit_at = self._restart_at = None
            self._begin_discover(now)
            return True
        if state is State.BOUND:
            if self._t1_at is None:
                return False  # infinite lease
            self._t1_at = now
        elif state in (State.RENEWING, State.REBINDING, State.REBOOTING):
            assert self._retransmit_at is not None  # armed by every send in these states
            self._retransmit_at = now
        else:
            return False  # PROBING, DECLINED
        self.handle_timer(now)
        return True

    def frames_to_send(self) -> list[bytes]:
        """Whole Ethernet frames to transmit, oldest first; the queue is emptied."""
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def dropped_replies(self) -> list[tuple[State, str]]:
        """(state, reason) of replies to our own exchange (our MAC and xid) dropped
        since the last call, worth a log line where `PacketDropped` is noise: each
        reason the first time it is seen in a state (numbers in it aside), at most
        `_MAX_TOLD` in all, so a hostile network cannot flood the log. E.g. an OFFER
        with lease time 0, which leaves the client in SELECTING. Emptied by the call.
        """
        out, self._dropped_replies = self._dropped_replies, []
        return out

    def get_timer(self) -> float | None:
        """The earliest deadline at which `handle_timer` must be called, or None."""
        deadlines = [
            t
            for t in (
                self._retransmit_at,
                self._t1_at,
                self._t2_at,
                self._expiry_at,
                self._probe_at,
                self._announce_at,
                self._restart_at,
            )
            if t is not None
        ]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Run every timer due at `now`. Afterwards get_timer() is None or > now."""
        # The bound is a safety net, never reached: every handler moves or clears its deadline.
        for _ in range(_MAX_TIMER_STEPS):  # pragma: no branch
            # Lease timers first, latest stage first: a driver that slept past
            # expiry must not renew and rebind on the way.
            if self._expiry_at is not None and self._expiry_at <= now:
                self._on_expiry(now)
            elif self._t2_at is not None and self._t2_at <= now:
                self._on_t2(now)
            elif self._t1_at is not None and self._t1_at <= now:
                self._on_t1(now)
            elif self._restart_at is not None and self._restart_at <= now:
                self._on_restart(now)
            elif self._retransmit_at is not None and self._retransmit_at <= now:
                self._on_retransmit(now)
            elif self._probe_at is not None and self._probe_at <= now:
                self._on_probe(now)
            elif self._announce_at is not None and self._announce_at <= now:
                self._on_announce(now)
            else:
                return

    def receive_frame(self, frame: bytes, now: float, *, checksum_not_ready: bool = False) -> None:
        """Take one Ethernet frame from the packet socket (DHCP or ARP). Never raises.

        `checksum_not_ready`: the kernel flagged the frame TP_STATUS_CSUMNOTREADY
        (PACKET_AUXDATA). A server on this host sending through a veth with
        checksum offload (dnsmasq in a namespace does) leaves only a partial
        UDP checksum in the frame; udhcpc, dhcpcd and systemd skip the check
        then, and so do we. Never set it for frames the kernel did not flag.
        """
        try:
            data = bytes(frame)
            if checksum_not_ready:
                data = _without_udp_checksum(data)
            self._receive(data, now)
        except _Drop as drop:
            self._drop(drop.reason, reply=isinstance(drop, _ReplyDrop))
        except (MalformedPacket, MalformedLease) as exc:
            self._drop(str(exc), reply=False)

    def _drop(self, reason: str, *, reply: bool) -> None:
        self._emit(PacketDropped(reason))
        if not reply:
            return
        key = (self._state, _NUMBER.sub("#", reason))
        if key not in self._told and len(self._told) < _MAX_TOLD:
            self._told.add(key)
            self._dropped_replies.append((self._state, reason))

    # -- state and output helpers -------------------------------------------------------

    def _transition(self, trigger: Trigger) -> None:
        old = self._state
        self._state = next_state(old, trigger)
        self._emit(StateChanged(old, self._state))

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _reset(self) -> None:
        """Forget every exchange, lease and timer (STOPPED)."""
        self._lease = self._pending = None
        self._offer = None
        self._xid = None
        self._clear_lease_timers()
        self._retransmit_at = self._probe_at = self._restart_at = None

    def _clear_lease_timers(self) -> None:
        self._t1_at = self._t2_at = self._expiry_at = self._announce_at = None

    def _new_exchange(self, now: float) -> None:
        self._xid = self._rng.getrandbits(32)
        self._exchange_start = self._first_request_at = now
        self._sends = 0

    def _message(
        self,
        kind: MessageType,
        xid: int,
        *,
        secs: int = 0,
        ciaddr: IPv4Address = _ANY,
        requested: IPv4Address | None = None,
        server_id: IPv4Address | None = None,
        full: bool = True,
    ) -> Message:
        cfg = self._config
        options: dict[int, bytes] = {OptionCode.MESSAGE_TYPE: bytes((kind,))}
        client_id = cfg.client_identifier
        if client_id is not None:
            options[OptionCode.CLIENT_ID] = client_id
        if requested is not None:
            options[OptionCode.REQUESTED_ADDRESS] = requested.packed
        if server_id is not None:
            options[OptionCode.SERVER_ID] = server_id.packed
        if full:
            options[OptionCode.MAX_MESSAGE_SIZE] = cfg.max_message_size.to_bytes(2, "big")
            if cfg.hostname is not None:
                options[OptionCode.HOSTNAME] = cfg.hostname.encode()
            if cfg.vendor_class is not None:
                options[OptionCode.VENDOR_CLASS_ID] = cfg.vendor_class
            if cfg.parameter_request_list:  # empty only with `-o` and no `-O`: none sent
                options[OptionCode.PARAMETER_REQUEST_LIST] = bytes(cfg.parameter_request_list)
            if kind is MessageType.DISCOVER and cfg.rapid_commit:
                options[OptionCode.RAPID_COMMIT] = b""
            options.update(cfg.extra_options)
        return Message(
            op=BOOTREQUEST,
            xid=xid,
            chaddr=cfg.mac,
            ciaddr=ciaddr,
            secs=min(max(secs, 0), 0xFFFF),
            options=tuple((int(code), payload) for code, payload in options.items()),
        )

    def _secs(self, now: float) -> int:
        return int(now - self._exchange_start)

    def _send_dhcp(self, message: Message, *, unicast: Lease | None = None) -> None:
        """Queue `message`: broadcast from 0.0.0.0, or from our address to the lease's server."""
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        frame = UdpFrame(
            src_mac=self._config.mac,
            dst_mac=BROADCAST_MAC if unicast is None else unicast.server_mac,
            src_ip=message.ciaddr,
            dst_ip=_LIMITED_BROADCAST if unicast is None else unicast.server_id,
            src_port=CLIENT_PORT,
            dst_port=SERVER_PORT,
            payload=encode_message(message, max_size=_OUR_MAX_SIZE),
        )
        self._outbox.append(encode_udp_frame(frame, ip_id=self._ip_id))

    def _send_arp(self, sender_ip: IPv4Address, target_ip: IPv4Address) -> None:
        mac = self._config.mac
        arp = ArpPacket(ARP_REQUEST, mac, sender_ip, _ZERO_MAC, target_ip)
        self._outbox.append(encode_arp_frame(BROADCAST_MAC, mac, arp))

    # -- sending, per exchange ----------------------------------------------------------

    def _discover_delay(self) -> float:
        interval = self._config.discover_interval
        if interval is not None:
            return interval
        return _timing.backoff(self._sends - 1, self._rng)

    def _begin_discover(self, now: float) -> None:
        self._transition(Trigger.RESTART)
        self._offer = None
        self._new_exchange(now)
        self._send_discover(now)

    def _send_discover(self, now: float) -> None:
        assert self._xid is not None
        message = self._message(
            MessageType.DISCOVER, self._xid, secs=self._secs(now), requested=self._hint
        )
        self._send_dhcp(message)
        self._sends += 1
        self._retransmit_at = now + self._discover_delay()

    def _send_selecting_request(self, now: float) -> None:
        assert self._xid is not None and self._offer is not None
        if self._sends == 0:
            self._first_request_at = now
        message = self._message(
            MessageType.REQUEST,
            self._xid,
            secs=self._secs(now),
            requested=self._offer.address,
            server_id=self._offer.server_id,
        )
        self._send_dhcp(message)
        self._sends += 1
        self._retransmit_at = now + _timing.backoff(self._sends - 1, self._rng)

    def _send_reboot_request(self, now: float) -> None:
        assert self._xid is not None and self._saved is not None
        message = self._message(
            MessageType.REQUEST, self._xid, secs=self._secs(now), requested=self._saved.address
        )
        self._send_dhcp(message)
        self._sends += 1
        self._retransmit_at = now + _timing.backoff(self._sends - 1, self._rng)

    def _send_renew_request(self, now: float) -> None:
        """RENEWING: unicast to the server; REBINDING: broadcast. ciaddr is our address."""
        lease = self._lease
        assert self._xid is not None and lease is not None
        message = self._message(
            MessageType.REQUEST, self._xid, secs=self._secs(now), ciaddr=lease.address
        )
        renewing = self._state is State.RENEWING
        self._send_dhcp(message, unicast=lease if renewing else None)
        self._sends += 1
        deadline = lease.t2_at if renewing else lease.expires_at
        assert deadline is not None  # infinite leases never renew
        self._retransmit_at = _timing.renew_retry(now, deadline, self._config.min_retry)

    # -- timers -----------------------------------------------------------------------

    def _on_retransmit(self, now: float) -> None:
        self._retransmit_at = None
        cfg = self._config
        state = self._state
        if state is State.SELECTING:
            if cfg.discover_tries is not None and self._sends >= cfg.discover_tries:
                self._emit(LeaseFailed())
                self._transition(Trigger.TRIES_EXHAUSTED)
                self._xid = None
                self._restart_at = now + cfg.failure_pause
            else:
                self._send_discover(now)
        elif state is State.REQUESTING:
            if self._sends >= cfg.request_tries:
                self._transition(Trigger.TRIES_EXHAUSTED)
                self._begin_discover(now)
            else:
                self._send_selecting_request(now)
        elif state is State.REBOOTING:
            if self._sends < cfg.reboot_tries:
                self._send_reboot_request(now)
                return
            saved = self._saved
            assert saved is not None
            if saved.expires_at is None or saved.expires_at > now:
                self._transition(Trigger.REBOOT_TIMEOUT_KEEP)
                self._bind(saved, now, LeaseAcquired(saved), announce=False)
            else:
                self._saved = None
                self._hint = saved.address
                self._transition(Trigger.TRIES_EXHAUSTED)
                self._begin_discover(now)
        else:
            # RENEWING / REBINDING are the only other states that arm the timer.
            assert state in (State.RENEWING, State.REBINDING), state
            self._send_renew_request(now)

    def _on_t1(self, now: float) -> None:
        self._t1_at = None
        self._transition(Trigger.T1)
        self._new_exchange(now)
        self._send_renew_request(now)

    def _on_t2(self, now: float) -> None:
        self._t1_at = self._t2_at = None
        self._transition(Trigger.T2)
        self._new_exchange(now)
        self._send_renew_request(now)

    def _on_expiry(self, now: float) -> None:
        lease = self._lease
        assert lease is not None
        self._emit(LeaseExpired(lease))
        self._transition(Trigger.EXPIRY)
        self._reset()
        self._saved = None
        self._hint = lease.address
        self._begin_discover(now)

    def _on_restart(self, now: float) -> None:
        self._restart_at = None
        if self._state is State.DECLINED:
            self._transition(Trigger.BACKOFF_DONE)
        self._begin_discover(now)

    def _on_probe(self, now: float) -> None:
        self._probe_at = None
        pending = self._pending
        assert pending is not None
        if self._probes_sent < _timing.PROBE_NUM:
            self._send_arp(_ANY, pending.address)
            self._probes_sent += 1
            if self._probes_sent < _timing.PROBE_NUM:
                delay = self._rng.uniform(_timing.PROBE_MIN, _timing.PROBE_MAX)
            else:
                delay = _timing.ANNOUNCE_WAIT
            self._probe_at = now + delay
            return
        self._pending = None
        self._transition(Trigger.PROBE_OK)
        self._bind(pending, now, LeaseAcquired(pending), announce=True)

    def _on_announce(self, now: float) -> None:
        self._announce_at = None
        lease = self._lease
        assert lease is not None
        self._send_arp(lease.address, lease.address)
        self._announces_sent += 1
        if self._announces_sent < _timing.ANNOUNCE_NUM:
            self._announce_at = now + _timing.ANNOUNCE_INTERVAL

    # -- binding ----------------------------------------------------------------------

    def _bind(self, lease: Lease, now: float, event: Event, *, announce: bool) -> None:
        """Enter BOUND with `lease` (the caller made the transition)."""
        self._lease = lease
        self._saved = None
        self._offer = None
        self._xid = None
        self._naks = self._conflicts = 0
        self._retransmit_at = self._probe_at = self._restart_at = None
        self._t1_at, self._t2_at, self._expiry_at = lease.t1_at, lease.t2_at, lease.expires_at
        self._emit(event)
        if announce:
            self._announces_sent = 0
            self._on_announce(now)

    def _conflict(self, now: float, lease: Lease, mac: bytes | None, *, lease_in_use: bool) -> None:
        decline = self._message(
            MessageType.DECLINE,
            self._rng.getrandbits(32),
            requested=lease.address,
            server_id=lease.server_id,
            full=False,
        )
        self._send_dhcp(decline)
        self._emit(AddressConflict(lease.address, mac, lease_in_use))
        self._transition(Trigger.CONFLICT)
        self._reset()
        self._saved = None
        self._hint = self._config.requested_address
        if self._hint == lease.address:
            self._hint = None
        self._conflicts += 1
        wait = self._config.decline_backoff
        if self._conflicts >= _timing.MAX_CONFLICTS:
            wait = max(wait, _timing.RATE_LIMIT_INTERVAL)  # RFC 5227 §2.1.1 rate limit
        self._restart_at = now + wait

    # -- receiving --------------------------------------------------------------------

    def _receive(self, frame: bytes, now: float) -> None:
        if self._state is State.STOPPED:
            raise _Drop("client is stopped")
        if len(frame) < 14:
            raise _Drop("runt frame")
        ethertype = int.from_bytes(frame[12:14], "big")
        if ethertype == ETH_P_ARP:
            if self._state is State.PROBING:
                self._receive_arp(frame, now)
            return
        if ethertype != ETH_P_IP:
            raise _Drop(f"ethertype {ethertype:#06x}")
        self._receive_dhcp(frame, now)

    def _receive_arp(self, frame: bytes, now: float) -> None:
        pending = self._pending
        assert pending is not None
        _dst, _src, arp = decode_arp_frame(frame)
        mac = self._config.mac
        if arp.sender_mac == mac:
            return  # our own probe, looped back
        # RFC 5227 §2.1.1: any ARP from our candidate address, or another host's
        # probe for it, means the address is taken.
        probe_for_it = (
            arp.op == ARP_REQUEST and arp.sender_ip == _ANY and arp.target_ip == pending.address
        )
        if arp.sender_ip == pending.address or probe_for_it:
            self._conflict(now, pending, arp.sender_mac, lease_in_use=False)

    def _receive_dhcp(self, frame: bytes, now: float) -> None:
        udp = decode_udp_frame(frame)
        mac = self._config.mac
        if udp.dst_mac not in (mac, BROADCAST_MAC):
            raise _Drop("frame not addressed to us")
        if (udp.src_port, udp.dst_port) != (SERVER_PORT, CLIENT_PORT):
            raise _Drop(f"UDP ports {udp.src_port}->{udp.dst_port}, not 67->68")
        try:
            message = decode_message(udp.payload)
        except MalformedPacket as exc:
            if self._reply_to_us(udp.payload):  # a server answered us in broken bytes
                raise _ReplyDrop(str(exc)) from None
            raise
        if message.op != BOOTREPLY:
            raise _Drop("not a BOOTREPLY")
        if message.htype != 1 or message.chaddr != mac:
            raise _Drop("chaddr is not ours")
        kind = message.message_type
        if kind is None:
            raise _Drop("no DHCP message type")
        if kind is MessageType.FORCERENEW:
            raise _Drop("FORCERENEW without authentication ignored")
        if self._xid is None or message.xid != self._xid:
            raise _Drop(f"xid {message.xid:#010x} does not match an exchange in {self._state.name}")
        try:
            self._receive_reply(message, kind, udp, now)
        except _Drop as drop:
            raise _ReplyDrop(drop.reason) from None
        except (MalformedPacket, MalformedLease) as exc:  # e.g. a bad option in our reply
            raise _ReplyDrop(str(exc)) from None

    def _receive_reply(
        self, message: Message, kind: MessageType, udp: UdpFrame, now: float
    ) -> None:
        """A reply to our running exchange (our MAC, our xid)."""
        server = message.get(OptionCode.SERVER_ID)
        server_id = server if isinstance(server, IPv4Address) else None
        if kind is MessageType.OFFER:
            self._receive_offer(message, server_id, now)
        elif kind is MessageType.ACK:
            self._receive_ack(message, udp, server_id, now)
        elif kind is MessageType.NAK:
            self._receive_nak(message, server_id, now)
        else:
            raise _Drop(f"unexpected {kind.name}")

    def _reply_to_us(self, payload: bytes) -> bool:
        """A BOOTREPLY header for our MAC and the running exchange's xid, whatever the
        rest of the message (RFC 2131 fixed fields: xid at 4, chaddr at 28)."""
        return (
            self._xid is not None
            and len(payload) >= 34
            and payload[0] == BOOTREPLY
            and payload[1:3] == b"\x01\x06"  # htype Ethernet, hlen 6
            and int.from_bytes(payload[4:8], "big") == self._xid
            and payload[28:34] == self._config.mac
        )

    def _check_expected(self, trigger: Trigger, what: str) -> None:
        if trigger not in TRANSITIONS[self._state]:
            raise _Drop(f"{what} in state {self._state.name}")

    def _ipv6_only(self, message: Message, now: float) -> bool:
        """RFC 8925: option 108 in reply to our request for it → pause DHCPv4."""
        if not self._config.ipv6_only_preferred:
            return False
        value = message.get(OptionCode.IPV6_ONLY_PREFERRED)
        if not isinstance(value, int):
            return False
        wait = max(float(value), _timing.MIN_V6ONLY_WAIT)
        self._emit(Ipv6OnlyPreferred(wait))
        self._transition(Trigger.IPV6_ONLY)
        self._reset()
        self._restart_at = now + wait
        return True

    def _receive_offer(self, message: Message, server_id: IPv4Address | None, now: float) -> None:
        self._check_expected(Trigger.OFFER, "OFFER")
        if server_id is None:
            raise _Drop("OFFER without server identifier")
        if not usable_address(message.yiaddr):
            raise _Drop(f"OFFER of unusable address {message.yiaddr}")
        lease_time = message.get(OptionCode.LEASE_TIME)
        if lease_time == 0:
            raise _Drop("OFFER with lease time 0")
        if self._ipv6_only(message, now):
            return
        self._offer = _Offer(
            server_id, message.yiaddr, lease_time if isinstance(lease_time, int) else None
        )
        self._transition(Trigger.OFFER)
        self._sends = 0
        self._send_selecting_request(now)

    def _receive_ack(
        self, message: Message, udp: UdpFrame, server_id: IPv4Address | None, now: float
    ) -> None:
        state = self._state
        self._check_expected(Trigger.ACK, "ACK")
        offer_lease_time: int | None = None
        if state is State.SELECTING:
            if not self._config.rapid_commit or message.option(OptionCode.RAPID_COMMIT) is None:
                raise _Drop("ACK without rapid commit in SELECTING")
            wanted = message.yiaddr
            known_server = None
        elif state is State.REQUESTING:
            assert self._offer is not None
            wanted = self._offer.address
            known_server = self._offer.server_id
            offer_lease_time = self._offer.lease_time
        elif state is State.REBOOTING:
            assert self._saved is not None
            wanted = self._saved.address
            known_server = None
        else:
            lease = self._lease
            assert lease is not None
            wanted = lease.address
            known_server = lease.server_id if state is State.RENEWING else None
        if server_id is None:
            if known_server is None:
                raise _Drop("ACK without server identifier")
            server_id = known_server
        elif known_server is not None and server_id != known_server:
            raise _Drop(f"ACK from {server_id}, we talk to {known_server}")
        if not usable_address(message.yiaddr):
            raise _Drop(f"ACK of unusable address {message.yiaddr}")
        if message.yiaddr != wanted:
            raise _Drop(f"ACK for {message.yiaddr}, we asked for {wanted}")
        if state in (State.SELECTING, State.REBOOTING) and self._ipv6_only(message, now):
            return
        lease = self._lease_from_ack(message, udp, server_id, offer_lease_time)
        if state in (State.RENEWING, State.REBINDING):
            self._transition(Trigger.ACK)
            self._bind(lease, now, LeaseRenewed(lease), announce=False)
        elif self._config.arp_probe:
            self._transition(Trigger.ACK_PROBE)
            self._reset()
            self._pending = lease
            self._probes_sent = 0
            self._probe_at = now + self._rng.uniform(0.0, _timing.PROBE_WAIT)
        else:
            self._transition(Trigger.ACK)
            self._bind(lease, now, LeaseAcquired(lease), announce=False)

    def _receive_nak(self, message: Message, server_id: IPv4Address | None, now: float) -> None:
        state = self._state
        self._check_expected(Trigger.NAK, "NAK")
        if server_id is None:
            raise _Drop("NAK without server identifier")
        if state is State.REQUESTING:
            assert self._offer is not None
            expected: IPv4Address | None = self._offer.server_id
        elif state is State.RENEWING:
            assert self._lease is not None
            expected = self._lease.server_id
        else:
            expected = None  # REBINDING, REBOOTING: we broadcast, any server may refuse
        if expected is not None and server_id != expected:
            raise _Drop(f"NAK from {server_id}, we talk to {expected}")
        text = message.get(OptionCode.MESSAGE)
        reason = f"NAK from {server_id}" + (f": {text}" if isinstance(text, str) else "")
        # REQUESTING held nothing yet; REBOOTING's saved lease may still be configured.
        lost = (
            self._lease if state in _HOLDING else self._saved if state is State.REBOOTING else None
        )
        self._emit(LeaseLost(lost, reason, message.options))
        self._transition(Trigger.NAK)
        self._reset()
        self._saved = None
        self._hint = None
        wait = min(self._config.nak_backoff * 2 ** min(self._naks, 16), _MAX_NAK_BACKOFF)
        self._naks += 1
        self._restart_at = now + wait

    def _lease_from_ack(
        self,
        message: Message,
        udp: UdpFrame,
        server_id: IPv4Address,
        offer_lease_time: int | None,
    ) -> Lease:
        get = message.get
        lease_time = get(OptionCode.LEASE_TIME)
        if not isinstance(lease_time, int):
            if offer_lease_time is None:
                raise _Drop("ACK without lease time")
            lease_time = offer_lease_time
        if lease_time == 0:
            raise _Drop("ACK with lease time 0")
        t1_opt = get(OptionCode.RENEWAL_TIME)
        t2_opt = get(OptionCode.REBINDING_TIME)
        t1, t2 = _timing.lease_timers(
            lease_time,
            t1_opt if isinstance(t1_opt, int) else None,
            t2_opt if isinstance(t2_opt, int) else None,
        )
        address = message.yiaddr
        mask = get(OptionCode.SUBNET_MASK)
        prefix = (
            _prefix_from_mask(mask) if isinstance(mask, IPv4Address) else _classful_prefix(address)
        )
        if prefix <= 30:
            network = IPv4Network((address, prefix), strict=False)
            if address in (network.network_address, network.broadcast_address):
                raise _Drop(f"address {address} is its subnet's network or broadcast address")
        routers = tuple(r for r in _ips(get(OptionCode.ROUTER)) if usable_router(r) and r != _ANY)
        classless = self._classless_routes(message)
        if classless is not None:
            routers = ()  # RFC 3442: option 3 is ignored when 121 (or 249) is present
        mtu = get(OptionCode.INTERFACE_MTU)
        search = get(OptionCode.DOMAIN_SEARCH)
        broadcast = get(OptionCode.BROADCAST_ADDRESS)
        lease = Lease(
            address=address,
            prefix_len=prefix,
            server_id=server_id,
            server_mac=udp.src_mac,
            lease_time=lease_time,
            t1=t1,
            t2=t2,
            acquired_at=float(self._first_request_at),
            routers=routers,
            classless_routes=classless or (),
            dns=_ips(get(OptionCode.DNS_SERVERS)),
            domain=_text(get(OptionCode.DOMAIN_NAME)),
            search=tuple(
                name for name in search if isinstance(name, str) and 0 < len(name) <= MAX_STRING
            )[:MAX_ITEMS]
            if isinstance(search, tuple)
            else (),
            hostname=_text(get(OptionCode.HOSTNAME)),
            mtu=mtu if isinstance(mtu, int) and mtu >= 68 else None,
            ntp=_ips(get(OptionCode.NTP_SERVERS)),
            broadcast=broadcast if isinstance(broadcast, IPv4Address) else None,
        )
        # `extra`: every option no typed field carries, raw, for the hook's optNNN
        # (udhcpc exports 53, 58 and 59 too), including one whose typed field
        # stayed empty (option 3 beside classless routes, an over-long hostname).
        typed: dict[int, bool] = {
            OptionCode.SUBNET_MASK: True,
            OptionCode.LEASE_TIME: True,
            OptionCode.SERVER_ID: True,
            OptionCode.ROUTER: bool(lease.routers),
            OptionCode.DNS_SERVERS: bool(lease.dns),
            OptionCode.HOSTNAME: lease.hostname is not None,
            OptionCode.DOMAIN_NAME: lease.domain is not None,
            OptionCode.INTERFACE_MTU: lease.mtu is not None,
            OptionCode.BROADCAST_ADDRESS: lease.broadcast is not None,
            OptionCode.NTP_SERVERS: bool(lease.ntp),
            OptionCode.DOMAIN_SEARCH: bool(lease.search),
        }
        extra = tuple(
            sorted(
                (code, payload)
                for code, payload in message.options
                if code not in _POLICED and not typed.get(code, False)
            )
        )
        return replace(lease, extra=extra)

    def _classless_routes(self, message: Message) -> tuple[ClasslessRoute, ...] | None:
        """Routes from 121 (else 249) after the TunnelVision policy; None if neither came."""
        raw = message.get(OptionCode.CLASSLESS_STATIC_ROUTES)
        if raw is None:
            raw = message.get(OptionCode.MS_CLASSLESS_STATIC_ROUTES)
        if not isinstance(raw, tuple):
            return None
        routes = tuple(r for r in raw if isinstance(r, ClasslessRoute))
        normal, broad = split_routes(routes)
        allow = self._config.allow_broad_routes
        if broad:
            self._emit(SuspiciousRoutes(broad, kept=allow))
        keep = set(normal) | (set(broad) if allow else set())
        return tuple(r for r in routes if r in keep)[:MAX_ITEMS]
