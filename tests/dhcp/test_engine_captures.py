"""The engine against real servers' frames (captured from dnsmasq, Kea, ISC dhcpd, udhcpd).

The client is given the captured client's MAC and an rng that yields the
captured xid, so the real OFFER/ACK/NAK frames answer its own exchange.

dnsmasq answers through an ordinary UDP socket, so on a veth its frames carry
only a partial UDP checksum (checksum offload); the kernel flags them
TP_STATUS_CSUMNOTREADY and the network process passes that on. The tests
deliver them the same way.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import FixedRng, Scenario, config, make_lease

from privsep.services.dhcp._events import LeaseAcquired, LeaseLost
from privsep.services.dhcp._options import MessageType
from privsep.services.dhcp._state import State

DATA = Path(__file__).resolve().parents[1] / "data" / "dhcp"
SERVERS = sorted({p.name.split("-")[0] for p in DATA.glob("*-*.json")})


def _captures(server: str) -> list[tuple[str, dict[str, Any], bytes]]:
    out = []
    for path in sorted(DATA.glob(f"{server}-*.json")):
        frame = bytes.fromhex((DATA / "frames" / f"{path.stem}.hex").read_text())
        out.append((path.stem.split("-")[-1], json.loads(path.read_text()), frame))
    return out


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


@pytest.mark.parametrize("server", SERVERS)
def test_engine_binds_with_real_server_frames(server: str) -> None:
    captures = _captures(server)
    acks = {doc["xid"]: (doc, frame) for kind, doc, frame in captures if kind == "ack"}
    offer_doc, offer_frame = next(
        (doc, frame) for kind, doc, frame in captures if kind == "offer" and doc["xid"] in acks
    )
    ack_doc, ack_frame = acks[offer_doc["xid"]]
    s = Scenario(
        _config_for(offer_doc["chaddr"]),
        rng=FixedRng(first_xid=offer_doc["xid"]),
    )
    s.start()
    s.last(MessageType.DISCOVER)
    partial = server == "dnsmasq"
    s.deliver(offer_frame, csum_partial=partial)
    assert s.client.state is State.REQUESTING, s.events()
    request = s.last(MessageType.REQUEST)
    assert request.get(54) == IPv4Address(offer_doc["options"]["54"])
    assert request.get(50) == IPv4Address(offer_doc["yiaddr"])
    s.deliver(ack_frame, at=s.now + 0.01, csum_partial=partial)
    [acquired] = s.events()
    assert isinstance(acquired, LeaseAcquired)
    lease = acquired.lease
    options = ack_doc["options"]
    assert lease.address == IPv4Address(ack_doc["yiaddr"])
    assert lease.server_id == IPv4Address(options["54"])
    assert lease.lease_time == options["51"]
    if "58" in options and "59" in options:
        assert (lease.t1, lease.t2) == (float(options["58"]), float(options["59"]))
    assert lease.dns == tuple(IPv4Address(a) for a in options.get("6", []))


def _config_for(chaddr: str) -> Any:
    return config(mac=_mac(chaddr), client_id_mode="mac")


@pytest.mark.parametrize("server", SERVERS)
def test_engine_takes_real_init_reboot_naks(server: str) -> None:
    captures = _captures(server)
    naks = {doc["xid"]: frame for kind, doc, frame in captures if kind == "nak"}
    request = next(doc for kind, doc, _ in captures if kind == "request" and doc["xid"] in naks)
    wanted = request["options"].get("50") or request["ciaddr"]
    saved = make_lease(address=IPv4Address(wanted), acquired_at=1000.0)
    s = Scenario(
        _config_for(request["chaddr"]),
        saved_lease=saved,
        rng=FixedRng(first_xid=request["xid"]),
    )
    s.start()
    assert s.client.state is State.REBOOTING
    s.deliver(naks[request["xid"]], csum_partial=server == "dnsmasq")
    [lost] = s.events()
    assert isinstance(lost, LeaseLost) and lost.lease == saved
    assert s.client.state is State.INIT


def test_partial_checksum_frames_are_dropped_unless_the_kernel_flagged_them() -> None:
    captures = _captures("dnsmasq")
    offer_doc, offer_frame = next((d, f) for k, d, f in captures if k == "offer")
    s = Scenario(_config_for(offer_doc["chaddr"]), rng=FixedRng(first_xid=offer_doc["xid"]))
    s.start()
    s.sent()
    s.deliver(offer_frame)
    assert [type(e).__name__ for e in s.events()] == ["PacketDropped"]
    s.deliver(offer_frame, csum_partial=True)
    assert s.client.state is State.REQUESTING
