"""Render a decoded DHCP message as the JSON of `privsep dhcp decode` (DESIGN.md 3).

Values keep their decoded types: ints, dotted addresses, lists, strings; RFC 3442
routes as `{"destination": "a.b.c.d/len", "router": "a.b.c.d"}`; opaque and
unknown options as lowercase hex. `sname`/`file` are shown as UTF-8 text, with
undecodable bytes escaped as `\\xNN`.
"""

from __future__ import annotations

import enum
from ipaddress import IPv4Address
from typing import Any

from privsep.services.dhcp._message import Message
from privsep.services.dhcp._options import ClasslessRoute, OptionValue, decode_option


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def _json_value(value: OptionValue | ClasslessRoute | IPv4Address | str | int) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, enum.IntEnum):
        return int(value)
    if isinstance(value, int | str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, IPv4Address):
        return str(value)
    if isinstance(value, ClasslessRoute):
        return {"destination": str(value.destination), "router": str(value.router)}
    return [_json_value(item) for item in value]


def message_to_json(message: Message) -> dict[str, Any]:
    """The JSON object for `message` (every known option is decoded by its kind)."""
    kind = message.message_type
    return {
        "op": message.op,
        "xid": message.xid,
        "secs": message.secs,
        "flags": message.flags,
        "ciaddr": str(message.ciaddr),
        "yiaddr": str(message.yiaddr),
        "siaddr": str(message.siaddr),
        "giaddr": str(message.giaddr),
        "chaddr": message.chaddr.hex(":"),
        "sname": _text(message.sname),
        "file": _text(message.file),
        "message_type": kind.name if kind is not None else None,
        "options": {
            str(code): _json_value(decode_option(code, payload))
            for code, payload in message.options
        },
    }
