"""udhcpc's option table and its `-x OPT:VAL` syntax, for `privsep dhcp`.

`-x` items are read the way busybox udhcpc reads them (`udhcp_str2optset` in
networking/udhcp/common.c, checked against the real udhcpc 1.35 on the wire):

- The name ends at the first `:`, `=`, space or tab (`mtu:1400`, `mtu=1400`). A name
  (any case) takes its type from udhcpc's table below. A number (`14`, `0x3d`; C syntax,
  so `061` is octal 49) makes a raw option whose value is hex (`0100beef`, or bytes of
  one or two digits between colons: `1:2:ff`), or a quoted string (`"dumpfile"` or
  `'dumpfile'`) whose bytes are sent as they are.
- A typed value is split at `,`, spaces and tabs. IP: `a.b.c.d`. Integers U8, U16, U32,
  S32: C syntax (`1400`, `0x578`, a leading 0 is octal). STRING: the bytes of the word.
  Lists take several values: IP lists (`router:10.0.0.1,10.0.0.2`), IP pairs
  (`routes:DEST GW ...`), domain search lists (`search:a.example b.example`, RFC 1035
  labels, lower-cased, one name after the other, uncompressed) and static routes
  (`staticroutes:10.0.0.0/8 10.0.0.1,0.0.0.0/0 10.0.0.254`, RFC 3442).
- A named list option adds to what an earlier `-x` gave its code (`-x dns:A -x dns:B`).
- Option 12, by name or number, becomes the client's host name (checked with `-H`'s).

Where udhcpc would silently send something else than what was written, we refuse with
one line instead: a value that does not fit its type (udhcpc sends 300 as 44 in a U8), a
second word for a single value (udhcpc drops it), a string over 254 bytes or a list over
254 (cut or dropped), an option given twice otherwise (the first one wins), host names
instead of addresses (udhcpc resolves them with DNS at start-up), the short inet_aton
forms (`10.1`), and the types udhcpc cannot write from text (`sipsrv`, `ip6rd`: it ignores
those items). Options the client writes itself (`_ENGINE_OWNED`) are refused as well.

Values are the raw bytes of argv (`os.fsencode`), so no argument can fail to encode.
Kept light: `privsep dhcp` imports this at start-up.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterable
from typing import Final

from privsep._cli import CliError
from privsep.services.dhcp._udhcpc_table import UDHCPC_OPTIONS
from privsep.services.dhcp._udhcpc_table import Kind as UdhcpcKind


class Kind(enum.Enum):
    """udhcpc's option types (OPTION_* in networking/udhcp/common.h)."""

    IP = "ip"
    IP_LIST = "ip list"
    IP_PAIRS = "ip pairs"
    STRING = "string"
    STRING_HOST = "host name"
    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    S32 = "s32"
    DNS_STRING = "domain list"
    STATIC_ROUTES = "static routes"
    SIP_SERVERS = "sip servers"
    SIXRD = "6rd"
    BIN = "hex or quoted string"  # numeric codes


_K = Kind

# udhcpc's table (`_udhcpc_table`, shared with the hook variables), typed for writing:
# the hooks print every address alike, -x must know which options take a list
# (udhcpc's OPTION_LIST flag: a second -x adds to the first).
_LIST_CODES: Final = frozenset({3, 6, 9, 41, 42, 44})
# 4, 5, 7 are commented out of udhcpc's table (its hooks show them as optNNN); -x takes
# them by name, typed as RFC 2132 does.
_RFC_ONLY: Final = {
    4: ("timesrv", _K.IP_LIST),
    5: ("namesrv", _K.IP_LIST),
    7: ("logsrv", _K.IP_LIST),
}


def _writing_kind(code: int, kind: UdhcpcKind) -> Kind:
    if kind is UdhcpcKind.IP:
        return _K.IP_LIST if code in _LIST_CODES else _K.IP
    if kind is UdhcpcKind.IP_PAIR:
        return _K.IP_PAIRS
    return Kind[kind.name]


# code -> (name, type), in code order.
OPTIONS: Final[dict[int, tuple[str, Kind]]] = dict(
    sorted(
        {
            **{code: (name, _writing_kind(code, k)) for code, (name, k) in UDHCPC_OPTIONS.items()},
            **_RFC_ONLY,
        }.items()
    )
)

# udhcpc's option names (-O, -x) -> codes; numbers work too.
OPTION_NAMES: Final[dict[str, int]] = {name: code for code, (name, _) in OPTIONS.items()}
STRING_OPTIONS: Final = frozenset(
    code for code, (_, kind) in OPTIONS.items() if kind in (_K.STRING, _K.STRING_HOST)
)

# Types of which a second -x adds to the first (udhcpc's OPTION_LIST).
_LISTS: Final = frozenset({_K.IP_LIST, _K.IP_PAIRS, _K.DNS_STRING, _K.STATIC_ROUTES})
# Integer types: (bytes, lowest, highest).
_INTEGERS: Final = {
    _K.U8: (1, 0, 0xFF),
    _K.U16: (2, 0, 0xFFFF),
    _K.U32: (4, 0, 0xFFFFFFFF),
    _K.S32: (4, -(1 << 31), (1 << 31) - 1),
}
# What dhcp-engine writes itself and refuses in `extra_options` (its ClientConfig
# `_ENGINE_OWNED`, less PAD and END; a test keeps the two equal). udhcpc takes them all:
# 61 replaces its client id, the others are sent twice.
_ENGINE_OWNED: Final = frozenset({50, 52, 53, 54, 55, 57, 61, 80})
_HOSTNAME: Final = 12

_NAME_END: Final = b" \t=:"  # udhcpc's strtok delimiters, name, then values
_VALUE_END: Final = b", \t"
_SECOND_END: Final = b", \t/-"  # the gateway of a route, the second address of a pair
_C_SPACE: Final = b" \t\n\v\f\r"
_MAX_STRING: Final = 254  # udhcpc: strnlen(val, 254)
_MAX_LIST: Final = 254  # udhcpc appends to a list only while it stays under 255 bytes
_MAX_HEX: Final = 255

_OCTET = rb"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4: Final = re.compile(rb"\.".join([_OCTET] * 4))
_C_INTEGER: Final = re.compile(rb"(-?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))")
_PREFIX: Final = re.compile(rb"[0-9]+")
_HEX_DIGITS: Final = b"0123456789abcdefABCDEF"


def _shown(text: str | bytes) -> str:
    """`text` for an error line: printable ASCII as is, the rest as escapes."""
    data = os.fsencode(text) if isinstance(text, str) else text
    return repr(data)[2:-1]


class _Tokens:
    """C's strtok over one -x item: udhcpc cuts its argument this way."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def next(self, delimiters: bytes) -> bytes | None:
        data, pos = self._data, self._pos
        while pos < len(data) and data[pos] in delimiters:
            pos += 1
        if pos == len(data):
            self._pos = pos
            return None
        end = pos
        while end < len(data) and data[end] not in delimiters:
            end += 1
        self._pos = min(end + 1, len(data))  # the delimiter that ended it is used up
        return data[pos:end]

    def rest(self) -> bytes | None:
        rest = self._data[self._pos :]
        self._pos = len(self._data)
        return rest or None


def _c_integer(token: bytes, *, signed: bool = False) -> int | None:
    """strtoul/strtol with base 0, as busybox's bb_strtou32/bb_strtoi32 accept it."""
    match = _C_INTEGER.fullmatch(token)
    if match is None or (match[1] and not signed):
        return None
    sign = -1 if match[1] else 1
    if match[2]:
        return sign * int(match[2], 16)
    if match[3]:
        return sign * int(match[3], 8)
    return sign * int(match[4])


def option_code(name: str) -> int:
    """The code of an option given by udhcpc's name (any case) or number (1..254)."""
    raw = os.fsencode(name)
    code = OPTION_NAMES.get(raw.decode("ascii", "replace").lower()) if raw.isascii() else None
    if code is None:
        code = _c_integer(raw)
        if code is None:
            raise CliError(f"unknown DHCP option '{_shown(raw)}'", code=2)
    if not 1 <= code <= 254:
        raise CliError(f"DHCP option '{_shown(raw)}' out of range (1..254)", code=2)
    return code


def _hex(text: bytes) -> bytes | None:
    """busybox's hex2bin: bytes of two digits, or of one before a colon (`1:2:ff`)."""
    out = bytearray()
    pos, end = 0, len(text)
    while pos < end:
        if len(out) == _MAX_HEX or text[pos] not in _HEX_DIGITS:
            return None
        value = int(text[pos : pos + 1], 16)
        pos += 1
        if pos < end and text[pos] in _HEX_DIGITS:
            value = value * 16 + int(text[pos : pos + 1], 16)
            pos += 1
        elif pos < end and text[pos] == ord(":"):
            pos += 1
        elif pos < end:
            return None
        if pos < end and text[pos] == ord(":"):
            pos += 1
        out.append(value)
    return bytes(out)


class _ItemError(Exception):
    """A bad -x value; `_parse_item` turns it into the one-line CliError."""


def _ip(token: bytes) -> bytes:
    if not _IPV4.fullmatch(token):
        raise _ItemError(f"'{_shown(token)}' is not an IPv4 address a.b.c.d")
    return bytes(int(part) for part in token.split(b"."))


def _second_ip(first: bytes, tokens: _Tokens, what: str) -> bytes:
    """The address after `first` (a route's gateway, a pair's second address)."""
    token = tokens.next(_SECOND_END)
    if token is None:
        raise _ItemError(f"'{_shown(first)}' needs {what} after it")
    return _ip(token)


def _string(token: bytes) -> bytes:
    if len(token) > _MAX_STRING:
        raise _ItemError(f"longer than {_MAX_STRING} bytes (udhcpc would cut it)")
    return token


def _domain(token: bytes) -> bytes:
    """One name in RFC 1035 labels, lower-cased, as udhcpc's dname_enc writes it."""
    labels = token[:-1].split(b".") if token.endswith(b".") else token.split(b".")
    if not all(1 <= len(label) <= 63 for label in labels):
        raise _ItemError(f"'{_shown(token)}' is not a domain name (labels of 1..63 bytes)")
    encoded = b"".join(bytes((len(label),)) + label.lower() for label in labels) + b"\x00"
    if len(encoded) > 255:
        raise _ItemError(f"'{_shown(token)}' is longer than 255 bytes on the wire")
    return encoded


def _route(token: bytes, tokens: _Tokens) -> bytes:
    """`a.b.c.d/n GATEWAY` -> RFC 3442: n, the first ceil(n/8) bytes of a.b.c.d, GATEWAY."""
    address, slash, prefix = token.partition(b"/")
    if not slash or not _PREFIX.fullmatch(prefix) or int(prefix) > 32:
        raise _ItemError(f"'{_shown(token)}' is not a.b.c.d/n (n 0..32) before a gateway")
    width = int(prefix)
    destination = _ip(address)[: (width + 7) // 8]
    return bytes((width,)) + destination + _second_ip(token, tokens, "a gateway")


def _integer(kind: Kind, name: str, token: bytes) -> bytes:
    size, low, high = _INTEGERS[kind]
    value = _c_integer(token, signed=low < 0)
    if value is None or not low <= value <= high:  # udhcpc would cut 300 to 44 for a U8
        if name == "lease":  # the message `-x lease:` always had
            raise _ItemError("lease must be seconds, 0..4294967295")
        raise _ItemError(f"{name} must be an integer, {low}..{high} (0x hex, a leading 0 octal)")
    return value.to_bytes(size, "big", signed=low < 0)


def _typed(code: int, kind: Kind, name: str, token: bytes, tokens: _Tokens) -> bytes:
    """One value of a named option (one element of a list)."""
    if kind in (_K.IP, _K.IP_LIST):
        return _ip(token)
    if kind is _K.IP_PAIRS:
        return _ip(token) + _second_ip(token, tokens, "a second address")
    if code == _HOSTNAME:
        return token  # its length is checked with -H's, by the client's config (1..255)
    if kind in (_K.STRING, _K.STRING_HOST):
        return _string(token)
    if kind is _K.DNS_STRING:
        return _domain(token)
    if kind is _K.STATIC_ROUTES:
        return _route(token, tokens)
    if kind in _INTEGERS:
        return _integer(kind, name, token)
    raise _ItemError(
        f"udhcpc cannot write {name} from text (it ignores this -x); give the bytes as {code}:HEX"
    )


def _raw(value: bytes | None) -> bytes:
    """The value of a numeric code: a quoted string, or hex."""
    value = (value or b"").strip(_C_SPACE)
    if not value:
        raise _ItemError("expected OPT:VAL")
    if len(value) >= 2 and value[0] in b"\"'" and value[-1] == value[0]:
        if len(value) == 2:
            raise _ItemError("empty string (udhcpc would send nothing)")
        return _string(value[1:-1])
    data = _hex(value)
    if data is None:
        raise _ItemError("value must be hex, or a quoted string")
    return data


def _parse_item(item: str) -> tuple[int, Kind, list[bytes]]:
    """(code, kind, values) of one `-x` item."""
    raw = os.fsencode(item)
    tokens = _Tokens(raw)
    name_bytes = tokens.next(_NAME_END)
    if name_bytes is None:
        raise CliError(f"-x {_shown(raw)}: expected OPT:VAL", code=2)
    name = os.fsdecode(name_bytes)
    code = option_code(name)
    if code in _ENGINE_OWNED:
        raise CliError(
            f"-x {_shown(raw)}: option {code} is written by the client itself, not by -x",
            code=2,
        )
    named = OPTIONS.get(code) if OPTION_NAMES.get(name.lower()) == code else None
    try:
        if named is None:
            return code, _K.BIN, [_raw(tokens.rest())]
        name, kind = named
        token = tokens.next(_VALUE_END)
        if token is None:
            raise _ItemError("expected OPT:VAL")
        values = [_typed(code, kind, name, token, tokens)]
        while (token := tokens.next(_VALUE_END)) is not None:
            if kind not in _LISTS:
                raise _ItemError(
                    f"{name} takes one value (udhcpc would send only the first word; "
                    f'for text with spaces give {code}:"TEXT")'
                )
            values.append(_typed(code, kind, name, token, tokens))
    except _ItemError as exc:
        raise CliError(f"-x {_shown(raw)}: {exc}", code=2) from None
    return code, kind, values


def extra_options(items: Iterable[str]) -> dict[int, bytes]:
    """{code: payload} from udhcpc's `-x OPT:VAL` items, in the order first given
    (option 12 included)."""
    options: dict[int, bytearray] = {}
    for item in items:
        code, kind, values = _parse_item(item)
        for value in values:
            if code not in options:
                options[code] = bytearray(value)
            elif kind not in _LISTS:
                raise CliError(
                    f"-x {_shown(item)}: option {code} given twice (udhcpc keeps the first)",
                    code=2,
                )
            elif len(options[code]) + len(value) > _MAX_LIST:
                raise CliError(
                    f"-x {_shown(item)}: option {code} over {_MAX_LIST} bytes "
                    "(udhcpc would drop the rest)",
                    code=2,
                )
            else:
                options[code] += value
    return {code: bytes(payload) for code, payload in options.items()}


def parse_extra(items: Iterable[str]) -> tuple[str, list[str]]:
    """(hostname, ["CODE:HEX", ...]): the layout parameters for udhcpc's `-x` items."""
    options = extra_options(items)
    hostname = options.pop(_HOSTNAME, b"")
    try:
        name = hostname.decode()
    except UnicodeDecodeError:
        raise CliError(f"-x hostname:{_shown(hostname)}: not UTF-8", code=2) from None
    return name, [f"{code}:{payload.hex()}" for code, payload in options.items()]
