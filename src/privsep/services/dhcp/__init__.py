"""The privilege-separated DHCPv4 client.

Public API, by layer:
- wire codec (pure): `Message`, `decode_message`, `encode_message`, options and frames;
- sans-IO engine (pure): `Client`, `ClientConfig`, `Lease` and the events it emits;
- actuator (the only part that changes the system): `Actuator`, `validate`, `Configuration`;
- network side: `EgressPolicy`; hooks: `hook_env`, `run_hook`.
Modules whose names start with an underscore are internal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from privsep.services.dhcp._actuator import Actuator as Actuator
    from privsep.services.dhcp._actuator import ActuatorRejected as ActuatorRejected
    from privsep.services.dhcp._actuator import Configuration as Configuration
    from privsep.services.dhcp._actuator import Limits as Limits
    from privsep.services.dhcp._actuator import Plan as Plan
    from privsep.services.dhcp._actuator import RouteRequest as RouteRequest
    from privsep.services.dhcp._actuator import validate as validate
    from privsep.services.dhcp._buffer import Buffer as Buffer
    from privsep.services.dhcp._config import DEFAULT_REQUEST_OPTIONS as DEFAULT_REQUEST_OPTIONS
    from privsep.services.dhcp._config import ClientConfig as ClientConfig
    from privsep.services.dhcp._config import InvalidConfig as InvalidConfig
    from privsep.services.dhcp._egress import EgressDenied as EgressDenied
    from privsep.services.dhcp._egress import EgressPolicy as EgressPolicy
    from privsep.services.dhcp._engine import Client as Client
    from privsep.services.dhcp._events import AddressConflict as AddressConflict
    from privsep.services.dhcp._events import Event as Event
    from privsep.services.dhcp._events import Ipv6OnlyPreferred as Ipv6OnlyPreferred
    from privsep.services.dhcp._events import LeaseAcquired as LeaseAcquired
    from privsep.services.dhcp._events import LeaseExpired as LeaseExpired
    from privsep.services.dhcp._events import LeaseFailed as LeaseFailed
    from privsep.services.dhcp._events import LeaseLost as LeaseLost
    from privsep.services.dhcp._events import LeaseReleased as LeaseReleased
    from privsep.services.dhcp._events import LeaseRenewed as LeaseRenewed
    from privsep.services.dhcp._events import PacketDropped as PacketDropped
    from privsep.services.dhcp._events import StateChanged as StateChanged
    from privsep.services.dhcp._events import SuspiciousRoutes as SuspiciousRoutes
    from privsep.services.dhcp._frames import ArpPacket as ArpPacket
    from privsep.services.dhcp._frames import MalformedFrame as MalformedFrame
    from privsep.services.dhcp._frames import UdpFrame as UdpFrame
    from privsep.services.dhcp._frames import decode_arp_frame as decode_arp_frame
    from privsep.services.dhcp._frames import decode_udp_frame as decode_udp_frame
    from privsep.services.dhcp._frames import encode_arp_frame as encode_arp_frame
    from privsep.services.dhcp._frames import encode_udp_frame as encode_udp_frame
    from privsep.services.dhcp._hookenv import HookEvent as HookEvent
    from privsep.services.dhcp._hookenv import LeaseFacts as LeaseFacts
    from privsep.services.dhcp._hookenv import facts_from_lease as facts_from_lease
    from privsep.services.dhcp._hookenv import hook_env as hook_env
    from privsep.services.dhcp._hookrun import HookResult as HookResult
    from privsep.services.dhcp._hookrun import run_hook as run_hook
    from privsep.services.dhcp._lease import Lease as Lease
    from privsep.services.dhcp._lease import MalformedLease as MalformedLease
    from privsep.services.dhcp._message import Message as Message
    from privsep.services.dhcp._message import decode_message as decode_message
    from privsep.services.dhcp._message import encode_message as encode_message
    from privsep.services.dhcp._options import ClasslessRoute as ClasslessRoute
    from privsep.services.dhcp._options import MalformedOption as MalformedOption
    from privsep.services.dhcp._options import MessageType as MessageType
    from privsep.services.dhcp._options import OptionCode as OptionCode
    from privsep.services.dhcp._options import decode_option as decode_option
    from privsep.services.dhcp._options import encode_option as encode_option
    from privsep.services.dhcp._state import EngineStateError as EngineStateError
    from privsep.services.dhcp._state import State as State
    from privsep.services.dhcp._timing import Rng as Rng

# Imported on first use, so a process that needs one layer (say the engine) does not
# pay for the others (the actuator pulls in asyncio).
_LAZY: dict[str, str] = {
    "Actuator": "privsep.services.dhcp._actuator",
    "ActuatorRejected": "privsep.services.dhcp._actuator",
    "AddressConflict": "privsep.services.dhcp._events",
    "ArpPacket": "privsep.services.dhcp._frames",
    "Buffer": "privsep.services.dhcp._buffer",
    "ClasslessRoute": "privsep.services.dhcp._options",
    "Client": "privsep.services.dhcp._engine",
    "ClientConfig": "privsep.services.dhcp._config",
    "Configuration": "privsep.services.dhcp._actuator",
    "DEFAULT_REQUEST_OPTIONS": "privsep.services.dhcp._config",
    "EgressDenied": "privsep.services.dhcp._egress",
    "EgressPolicy": "privsep.services.dhcp._egress",
    "EngineStateError": "privsep.services.dhcp._state",
    "Event": "privsep.services.dhcp._events",
    "HookEvent": "privsep.services.dhcp._hookenv",
    "HookResult": "privsep.services.dhcp._hookrun",
    "InvalidConfig": "privsep.services.dhcp._config",
    "Ipv6OnlyPreferred": "privsep.services.dhcp._events",
    "Lease": "privsep.services.dhcp._lease",
    "LeaseAcquired": "privsep.services.dhcp._events",
    "LeaseExpired": "privsep.services.dhcp._events",
    "LeaseFacts": "privsep.services.dhcp._hookenv",
    "LeaseFailed": "privsep.services.dhcp._events",
    "LeaseLost": "privsep.services.dhcp._events",
    "LeaseReleased": "privsep.services.dhcp._events",
    "LeaseRenewed": "privsep.services.dhcp._events",
    "Limits": "privsep.services.dhcp._actuator",
    "MalformedFrame": "privsep.services.dhcp._frames",
    "MalformedLease": "privsep.services.dhcp._lease",
    "MalformedOption": "privsep.services.dhcp._options",
    "Message": "privsep.services.dhcp._message",
    "MessageType": "privsep.services.dhcp._options",
    "OptionCode": "privsep.services.dhcp._options",
    "PacketDropped": "privsep.services.dhcp._events",
    "Plan": "privsep.services.dhcp._actuator",
    "Rng": "privsep.services.dhcp._timing",
    "RouteRequest": "privsep.services.dhcp._actuator",
    "State": "privsep.services.dhcp._state",
    "StateChanged": "privsep.services.dhcp._events",
    "SuspiciousRoutes": "privsep.services.dhcp._events",
    "UdpFrame": "privsep.services.dhcp._frames",
    "decode_arp_frame": "privsep.services.dhcp._frames",
    "decode_message": "privsep.services.dhcp._message",
    "decode_option": "privsep.services.dhcp._options",
    "decode_udp_frame": "privsep.services.dhcp._frames",
    "encode_arp_frame": "privsep.services.dhcp._frames",
    "encode_message": "privsep.services.dhcp._message",
    "encode_option": "privsep.services.dhcp._options",
    "encode_udp_frame": "privsep.services.dhcp._frames",
    "facts_from_lease": "privsep.services.dhcp._hookenv",
    "hook_env": "privsep.services.dhcp._hookenv",
    "run_hook": "privsep.services.dhcp._hookrun",
    "validate": "privsep.services.dhcp._actuator",
}

__all__ = sorted(_LAZY)  # noqa: PLE0605 (derived from the one table above)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
