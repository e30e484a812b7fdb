"""DHCPv4 option codes and the one table that decodes and encodes their payloads.

`OPTIONS` maps a code to `(name, kind)`. `decode_option` and `encode_option`
both dispatch on the kind, so the two directions cannot drift apart. Codes not in
the table are opaque: their payload is returned as the raw bytes, unchanged.

Decoding is strict; any payload that does not fit its kind raises
`MalformedOption` (a `MalformedPacket`). Decisions, documented in
docs/dhcp-codec.md:
- string: trailing NULs are stripped (some servers NUL-terminate); an embedded
  NUL is rejected; the rest must be UTF-8. Other characters (quotes, `$`,
  newlines, ...) are kept: the value is inert data and never reaches a shell.
- domain_list (119): RFC 1035 names with compression; every pointer must point
  strictly before the start of the segment it was reached from, so a name can
  only walk backwards and always terminates. Labels must be printable ASCII
  without dots or backslashes; names are at most 255 bytes on the wire.
- classless_routes (121/249): prefix length 0..32, exactly the significant
  octets; destination bits beyond the prefix are masked off (as dhcpcd and
  systemd do), so 10.1.2.3/8 reads as 10.0.0.0/8.
- message_type: only the values `MessageType` names are accepted.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Final, TypeAlias

from privsep._errors import MalformedPacket


class MalformedOption(MalformedPacket):
    """An option payload that does not fit the option's kind."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"option {code}: {reason}")
        self.code = code


class OptionCode(enum.IntEnum):
    PAD = 0
    SUBNET_MASK = 1
    TIME_OFFSET = 2
    ROUTER = 3
    TIME_SERVERS = 4
    NAME_SERVERS = 5
    DNS_SERVERS = 6
    LOG_SERVERS = 7
    COOKIE_SERVERS = 8
    LPR_SERVERS = 9
    IMPRESS_SERVERS = 10
    RLP_SERVERS = 11
    HOSTNAME = 12
    BOOT_FILE_SIZE = 13
    MERIT_DUMP_FILE = 14
    DOMAIN_NAME = 15
    SWAP_SERVER = 16
    ROOT_PATH = 17
    EXTENSIONS_PATH = 18
    IP_FORWARDING = 19
    NON_LOCAL_SOURCE_ROUTING = 20
    POLICY_FILTER = 21
    MAX_DATAGRAM_REASSEMBLY = 22
    DEFAULT_IP_TTL = 23
    PATH_MTU_AGING_TIMEOUT = 24
    INTERFACE_MTU = 26
    ALL_SUBNETS_LOCAL = 27
    BROADCAST_ADDRESS = 28
    PERFORM_MASK_DISCOVERY = 29
    MASK_SUPPLIER = 30
    PERFORM_ROUTER_DISCOVERY = 31
    ROUTER_SOLICITATION_ADDRESS = 32
    STATIC_ROUTES = 33
    TRAILER_ENCAPSULATION = 34
    ARP_CACHE_TIMEOUT = 35
    ETHERNET_ENCAPSULATION = 36
    TCP_DEFAULT_TTL = 37
    TCP_KEEPALIVE_INTERVAL = 38
    TCP_KEEPALIVE_GARBAGE = 39
    NIS_DOMAIN = 40
    NIS_SERVERS = 41
    NTP_SERVERS = 42
    VENDOR_SPECIFIC = 43
    NETBIOS_NAME_SERVERS = 44
    NETBIOS_DD_SERVERS = 45
    NETBIOS_NODE_TYPE = 46
    NETBIOS_SCOPE = 47
    X_FONT_SERVERS = 48
    X_DISPLAY_MANAGERS = 49
    REQUESTED_ADDRESS = 50
    LEASE_TIME = 51
    OVERLOAD = 52
    MESSAGE_TYPE = 53
    SERVER_ID = 54
    PARAMETER_REQUEST_LIST = 55
    MESSAGE = 56
    MAX_MESSAGE_SIZE = 57
    RENEWAL_TIME = 58
    REBINDING_TIME = 59
    VENDOR_CLASS_ID = 60
    CLIENT_ID = 61
    NISPLUS_DOMAIN = 64
    NISPLUS_SERVERS = 65
    TFTP_SERVER_NAME = 66
    BOOTFILE_NAME = 67
    SMTP_SERVERS = 69
    POP3_SERVERS = 70
    NNTP_SERVERS = 71
    WWW_SERVERS = 72
    FINGER_SERVERS = 73
    IRC_SERVERS = 74
    STREETTALK_SERVERS = 75
    STDA_SERVERS = 76
    USER_CLASS = 77
    RAPID_COMMIT = 80
    CLIENT_FQDN = 81
    RELAY_AGENT_INFORMATION = 82
    CLIENT_SYSTEM_ARCHITECTURE = 93
    CLIENT_NDI = 94
    UUID_GUID = 97
    TZ_POSIX = 100
    TZ_DATABASE = 101
    IPV6_ONLY_PREFERRED = 108
    CAPTIVE_PORTAL = 114
    AUTO_CONFIGURE = 116
    SUBNET_SELECTION = 118
    DOMAIN_SEARCH = 119
    SIP_SERVERS = 120
    CLASSLESS_STATIC_ROUTES = 121
    VENDOR_IDENTIFYING_CLASS = 124
    VENDOR_IDENTIFYING_INFO = 125
    FORCERENEW_NONCE_CAPABLE = 145
    TFTP_SERVER_ADDRESSES = 150
    MS_CLASSLESS_STATIC_ROUTES = 249
    PRIVATE_PROXY_AUTODISCOVERY = 252
    END = 255


class MessageType(enum.IntEnum):
    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8
    FORCERENEW = 9
    LEASEQUERY = 10
    LEASEUNASSIGNED = 11
    LEASEUNKNOWN = 12
    LEASEACTIVE = 13
    BULKLEASEQUERY = 14
    LEASEQUERYDONE = 15
    ACTIVELEASEQUERY = 16
    LEASEQUERYSTATUS = 17
    TLS = 18


@dataclass(frozen=True, slots=True)
class ClasslessRoute:
    """One RFC 3442 route: `destination` via `router` (0.0.0.0 = on-link)."""

    destination: IPv4Network
    router: IPv4Address


OptionValue: TypeAlias = (
    int
    | str
    | bytes
    | IPv4Address
    | tuple[IPv4Address, ...]
    | tuple[int, ...]
    | tuple[str, ...]
    | tuple[ClasslessRoute, ...]
)


class OptionKind(enum.Enum):
    """How an option's payload is laid out on the wire (and which Python type holds it)."""

    IP = "ip"  # exactly one address -> IPv4Address
    IP_LIST = "ip_list"  # one or more addresses -> tuple[IPv4Address, ...]
    IP_PAIRS = "ip_pairs"  # one or more address pairs, flattened -> tuple[IPv4Address, ...]
    U8 = "u8"  # -> int
    U16 = "u16"  # -> int
    U32 = "u32"  # -> int
    I32 = "i32"  # signed, option 2 -> int
    BOOL = "bool"  # one byte, 0 or 1 -> bool
    FLAG = "flag"  # zero-length presence flag (rapid commit) -> True
    STRING = "string"  # -> str
    DOMAIN_LIST = "domain_list"  # RFC 1035 names with compression -> tuple[str, ...]
    CLASSLESS_ROUTES = "classless_routes"  # RFC 3442 -> tuple[ClasslessRoute, ...]
    MESSAGE_TYPE = "message_type"  # -> MessageType
    OVERLOAD = "overload"  # 1 file, 2 sname, 3 both -> int
    U8_LIST = "u8_list"  # one or more bytes -> tuple[int, ...]
    CLIENT_ID = "client_id"  # type byte + at least one byte -> bytes
    RAW = "raw"  # opaque -> bytes


_K = OptionKind

# The table. Options with structure we do not interpret (vendor data, FQDN,
# relay information, ...) are RAW and survive decode/encode byte for byte.
OPTIONS: Final[dict[int, tuple[str, OptionKind]]] = {
    1: ("subnet-mask", _K.IP),
    2: ("time-offset", _K.I32),
    3: ("routers", _K.IP_LIST),
    4: ("time-servers", _K.IP_LIST),
    5: ("name-servers", _K.IP_LIST),
    6: ("domain-name-servers", _K.IP_LIST),
    7: ("log-servers", _K.IP_LIST),
    8: ("cookie-servers", _K.IP_LIST),
    9: ("lpr-servers", _K.IP_LIST),
    10: ("impress-servers", _K.IP_LIST),
    11: ("rlp-servers", _K.IP_LIST),
    12: ("host-name", _K.STRING),
    13: ("boot-file-size", _K.U16),
    14: ("merit-dump", _K.STRING),
    15: ("domain-name", _K.STRING),
    16: ("swap-server", _K.IP),
    17: ("root-path", _K.STRING),
    18: ("extensions-path", _K.STRING),
    19: ("ip-forwarding", _K.BOOL),
    20: ("non-local-source-routing", _K.BOOL),
    21: ("policy-filter", _K.IP_PAIRS),
    22: ("max-dgram-reassembly", _K.U16),
    23: ("default-ip-ttl", _K.U8),
    24: ("path-mtu-aging-timeout", _K.U32),
    26: ("interface-mtu", _K.U16),
    27: ("all-subnets-local", _K.BOOL),
    28: ("broadcast-address", _K.IP),
    29: ("perform-mask-discovery", _K.BOOL),
    30: ("mask-supplier", _K.BOOL),
    31: ("router-discovery", _K.BOOL),
    32: ("router-solicitation-address", _K.IP),
    33: ("static-routes", _K.IP_PAIRS),
    34: ("trailer-encapsulation", _K.BOOL),
    35: ("arp-cache-timeout", _K.U32),
    36: ("ieee802-3-encapsulation", _K.BOOL),
    37: ("default-tcp-ttl", _K.U8),
    38: ("tcp-keepalive-interval", _K.U32),
    39: ("tcp-keepalive-garbage", _K.BOOL),
    40: ("nis-domain", _K.STRING),
    41: ("nis-servers", _K.IP_LIST),
    42: ("ntp-servers", _K.IP_LIST),
    43: ("vendor-encapsulated-options", _K.RAW),
    44: ("netbios-name-servers", _K.IP_LIST),
    45: ("netbios-dd-server", _K.IP_LIST),
    46: ("netbios-node-type", _K.U8),
    47: ("netbios-scope", _K.STRING),
    48: ("font-servers", _K.IP_LIST),
    49: ("x-display-manager", _K.IP_LIST),
    50: ("dhcp-requested-address", _K.IP),
    51: ("dhcp-lease-time", _K.U32),
    52: ("dhcp-option-overload", _K.OVERLOAD),
    53: ("dhcp-message-type", _K.MESSAGE_TYPE),
    54: ("dhcp-server-identifier", _K.IP),
    55: ("dhcp-parameter-request-list", _K.U8_LIST),
    56: ("dhcp-message", _K.STRING),
    57: ("dhcp-max-message-size", _K.U16),
    58: ("dhcp-renewal-time", _K.U32),
    59: ("dhcp-rebinding-time", _K.U32),
    60: ("vendor-class-identifier", _K.RAW),  # opaque per RFC 2132; often but not always text
    61: ("dhcp-client-identifier", _K.CLIENT_ID),
    64: ("nisplus-domain", _K.STRING),
    65: ("nisplus-servers", _K.IP_LIST),
    66: ("tftp-server-name", _K.STRING),
    67: ("bootfile-name", _K.STRING),
    69: ("smtp-server", _K.IP_LIST),
    70: ("pop-server", _K.IP_LIST),
    71: ("nntp-server", _K.IP_LIST),
    72: ("www-server", _K.IP_LIST),
    73: ("finger-server", _K.IP_LIST),
    74: ("irc-server", _K.IP_LIST),
    75: ("streettalk-server", _K.IP_LIST),
    76: ("streettalk-directory-assistance-server", _K.IP_LIST),
    77: ("user-class", _K.RAW),
    80: ("rapid-commit", _K.FLAG),
    81: ("fqdn", _K.RAW),
    82: ("relay-agent-information", _K.RAW),
    93: ("client-system-architecture", _K.RAW),
    94: ("client-ndi", _K.RAW),
    97: ("uuid-guid", _K.RAW),
    100: ("pcode", _K.STRING),
    101: ("tcode", _K.STRING),
    108: ("v6-only-preferred", _K.U32),
    114: ("captive-portal", _K.STRING),
    116: ("auto-config", _K.U8),
    118: ("subnet-selection", _K.IP),
    119: ("domain-search", _K.DOMAIN_LIST),
    120: ("sip-server", _K.RAW),
    121: ("classless-static-route", _K.CLASSLESS_ROUTES),
    124: ("vivco-suboptions", _K.RAW),
    125: ("vivso-suboptions", _K.RAW),
    145: ("forcerenew-nonce-capable", _K.U8_LIST),
    150: ("tftp-server-address", _K.IP_LIST),
    249: ("ms-classless-static-route", _K.CLASSLESS_ROUTES),
    252: ("wpad", _K.STRING),
}


def option_name(code: int) -> str:
    """The table name of `code`, or `option-N` for codes we treat as opaque."""
    entry = OPTIONS.get(code)
    return entry[0] if entry else f"option-{code}"


# -- decoding ---------------------------------------------------------------------


def _ips(code: int, data: bytes, multiple: int) -> tuple[IPv4Address, ...]:
    if not data or len(data) % multiple:
        raise MalformedOption(code, f"length {len(data)} is not a positive multiple of {multiple}")
    return tuple(IPv4Address(data[i : i + 4]) for i in range(0, len(data), 4))


def _dec_ip(code: int, data: bytes) -> OptionValue:
    if len(data) != 4:
        raise MalformedOption(code, f"length {len(data)}, an address needs 4")
    return IPv4Address(data)


def _dec_ip_list(code: int, data: bytes) -> OptionValue:
    return _ips(code, data, 4)


def _dec_ip_pairs(code: int, data: bytes) -> OptionValue:
    return _ips(code, data, 8)


def _fixed_int(code: int, data: bytes, size: int, *, signed: bool = False) -> int:
    if len(data) != size:
        raise MalformedOption(code, f"length {len(data)}, expected {size}")
    return int.from_bytes(data, "big", signed=signed)


def _dec_u8(code: int, data: bytes) -> OptionValue:
    return _fixed_int(code, data, 1)


def _dec_u16(code: int, data: bytes) -> OptionValue:
    return _fixed_int(code, data, 2)


def _dec_u32(code: int, data: bytes) -> OptionValue:
    return _fixed_int(code, data, 4)


def _dec_i32(code: int, data: bytes) -> OptionValue:
    return _fixed_int(code, data, 4, signed=True)


def _dec_bool(code: int, data: bytes) -> OptionValue:
    value = _fixed_int(code, data, 1)
    if value > 1:
        raise MalformedOption(code, f"boolean value {value}")
    return bool(value)


def _dec_flag(code: int, data: bytes) -> OptionValue:
    if data:
        raise MalformedOption(code, f"length {len(data)}, a flag option is empty")
    return True


def _dec_string(code: int, data: bytes) -> OptionValue:
    text = data.rstrip(b"\x00")
    if b"\x00" in text:
        raise MalformedOption(code, "NUL inside a string")
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedOption(code, "string is not UTF-8") from None


def _dec_message_type(code: int, data: bytes) -> OptionValue:
    value = _fixed_int(code, data, 1)
    try:
        return MessageType(value)
    except ValueError:
        raise MalformedOption(code, f"unknown message type {value}") from None


def _dec_overload(code: int, data: bytes) -> OptionValue:
    value = _fixed_int(code, data, 1)
    if value not in (1, 2, 3):
        raise MalformedOption(code, f"overload value {value}")
    return value


def _dec_u8_list(code: int, data: bytes) -> OptionValue:
    if not data:
        raise MalformedOption(code, "empty list")
    return tuple(data)


def _dec_client_id(code: int, data: bytes) -> OptionValue:
    if len(data) < 2:
        raise MalformedOption(code, f"length {len(data)}, a client identifier needs 2 or more")
    return data


def _dec_raw(code: int, data: bytes) -> OptionValue:
    return data


_MAX_NAME = 255  # RFC 1035 3.1: a name is at most 255 octets on the wire
# Bytes a label may hold: printable ASCII except "." and "\\" (no escaping games).
_LABEL_BYTES: Final = bytes(b for b in range(0x21, 0x7F) if b not in (0x2E, 0x5C))


def _dec_domain_list(code: int, data: bytes) -> OptionValue:
    names: list[str] = []
    pos = 0
    end = len(data)
    while pos < end:
        labels: list[str] = []
        wire_len = 0
        cursor = pos
        # Pointers must land strictly before `floor`, the start of the segment
        # being read, so the walk moves backwards at every jump: no loops.
        floor = pos
        next_name: int | None = None
        while True:
            if cursor >= end:
                raise MalformedOption(code, "name runs past the end")
            length = data[cursor]
            if length == 0:
                wire_len += 1
                cursor += 1
                break
            if length & 0xC0 == 0xC0:
                if cursor + 1 >= end:
                    raise MalformedOption(code, "truncated compression pointer")
                target = ((length & 0x3F) << 8) | data[cursor + 1]
                if next_name is None:
                    next_name = cursor + 2
                if target >= floor:
                    raise MalformedOption(code, "compression pointer does not point backwards")
                cursor = floor = target
                continue
            if length & 0xC0:
                raise MalformedOption(code, f"reserved label type {length:#04x}")
            label = data[cursor + 1 : cursor + 1 + length]
            if len(label) != length:
                raise MalformedOption(code, "label runs past the end")
            wire_len += 1 + length
            if wire_len >= _MAX_NAME:
                raise MalformedOption(code, "name longer than 255 bytes")
            if label.translate(None, _LABEL_BYTES):
                raise MalformedOption(code, "label with a character outside printable ASCII")
            labels.append(label.decode("ascii"))
            cursor += 1 + length
        names.append(".".join(labels))
        pos = cursor if next_name is None else next_name
    return tuple(names)


def _dec_classless_routes(code: int, data: bytes) -> OptionValue:
    if not data:
        raise MalformedOption(code, "empty route list")
    routes: list[ClasslessRoute] = []
    pos = 0
    end = len(data)
    while pos < end:
        width = data[pos]
        if width > 32:
            raise MalformedOption(code, f"prefix length {width}")
        significant = (width + 7) // 8
        if pos + 1 + significant + 4 > end:
            raise MalformedOption(code, "truncated route")
        dest = data[pos + 1 : pos + 1 + significant] + bytes(4 - significant)
        router = data[pos + 1 + significant : pos + 5 + significant]
        network = IPv4Network((int.from_bytes(dest, "big"), width), strict=False)
        routes.append(ClasslessRoute(network, IPv4Address(router)))
        pos += 5 + significant
    return tuple(routes)


_Decoder = Callable[[int, bytes], OptionValue]

_DECODERS: Final[dict[OptionKind, _Decoder]] = {
    _K.IP: _dec_ip,
    _K.IP_LIST: _dec_ip_list,
    _K.IP_PAIRS: _dec_ip_pairs,
    _K.U8: _dec_u8,
    _K.U16: _dec_u16,
    _K.U32: _dec_u32,
    _K.I32: _dec_i32,
    _K.BOOL: _dec_bool,
    _K.FLAG: _dec_flag,
    _K.STRING: _dec_string,
    _K.DOMAIN_LIST: _dec_domain_list,
    _K.CLASSLESS_ROUTES: _dec_classless_routes,
    _K.MESSAGE_TYPE: _dec_message_type,
    _K.OVERLOAD: _dec_overload,
    _K.U8_LIST: _dec_u8_list,
    _K.CLIENT_ID: _dec_client_id,
    _K.RAW: _dec_raw,
}

# code -> decoder, resolved once: decode_message calls this for every option.
_DECODER_BY_CODE: Final[dict[int, _Decoder]] = {
    code: _DECODERS[kind] for code, (_, kind) in OPTIONS.items()
}


# -- fast validation ---------------------------------------------------------------
# decode_message validates every known option. Building the values (addresses,
# networks) costs more than the rest of the parse, so each kind has a cheap
# check that answers True only for payloads its decoder accepts; anything else
# goes to the decoder, which has the final word and the precise error.

_Check = Callable[[bytes], bool]


def _chk_routes(data: bytes) -> bool:
    pos = 0
    end = len(data)
    while pos < end:
        width = data[pos]
        if width > 32:
            return False
        pos += 5 + (width + 7) // 8
    return 0 < end == pos


def _chk_domains(data: bytes) -> bool:
    # The decoder's walk, without building names: a pointer is resolved in one
    # step when it lands on a label start already checked in an earlier name
    # (whose remaining length is known); any other pointer goes to the decoder.
    suffix: dict[int, int] = {}  # label start -> wire bytes from there to its name's end
    pos = 0
    end = len(data)
    while pos < end:
        start = pos
        starts: list[tuple[int, int]] = []
        length = 0
        while True:
            if pos >= end:
                return False
            n = data[pos]
            if n == 0:
                tail = 1
                pos += 1
                break
            if n >= 0xC0:
                if pos + 1 >= end:
                    return False
                target = ((n & 0x3F) << 8) | data[pos + 1]
                if target >= start or target not in suffix:
                    return False
                tail = suffix[target]
                pos += 2
                break
            label = data[pos + 1 : pos + 1 + n]
            if n >= 0x40 or len(label) != n or label.translate(None, _LABEL_BYTES):
                return False
            starts.append((pos, length))
            length += 1 + n
            pos += 1 + n
        total = length + tail
        if total > _MAX_NAME:
            return False
        for label_start, before in starts:
            suffix[label_start] = total - before
    return True


def _chk_string(data: bytes) -> bool:
    text = data.rstrip(b"\x00")
    return text.isascii() and b"\x00" not in text


_CHECKS: Final[dict[OptionKind, _Check]] = {
    _K.IP: lambda d: len(d) == 4,
    _K.IP_LIST: lambda d: len(d) > 0 and len(d) % 4 == 0,
    _K.IP_PAIRS: lambda d: len(d) > 0 and len(d) % 8 == 0,
    _K.U8: lambda d: len(d) == 1,
    _K.U16: lambda d: len(d) == 2,
    _K.U32: lambda d: len(d) == 4,
    _K.I32: lambda d: len(d) == 4,
    _K.BOOL: lambda d: d in (b"\x00", b"\x01"),
    _K.FLAG: lambda d: not d,
    _K.STRING: _chk_string,
    _K.DOMAIN_LIST: _chk_domains,
    _K.CLASSLESS_ROUTES: _chk_routes,
    _K.MESSAGE_TYPE: lambda d: len(d) == 1 and d[0] in MessageType._value2member_map_,
    _K.OVERLOAD: lambda d: d in (b"\x01", b"\x02", b"\x03"),
    _K.U8_LIST: lambda d: len(d) > 0,
    _K.CLIENT_ID: lambda d: len(d) >= 2,
    _K.RAW: lambda d: True,
}

_CHECK_BY_CODE: Final[dict[int, _Check]] = {
    code: _CHECKS[kind] for code, (_, kind) in OPTIONS.items()
}


def check_option(code: int, payload: bytes) -> None:
    """Raise `MalformedOption` if `decode_option(code, payload)` would; else return.

    The same verdict as decode_option, without building the value.
    """
    check = _CHECK_BY_CODE.get(code)
    if check is not None and not check(payload):
        _DECODER_BY_CODE[code](code, payload)


def decode_option(code: int, payload: bytes) -> OptionValue:
    """Decode one option payload (after RFC 3396 concatenation) by its kind.

    Unknown codes give back the raw bytes. Raises `MalformedOption`.
    """
    decoder = _DECODER_BY_CODE.get(code)
    if decoder is None:
        return bytes(payload)
    return decoder(code, bytes(payload))


# -- encoding ---------------------------------------------------------------------


def _want(code: int, value: object, kind: type | tuple[type, ...]) -> None:
    if not isinstance(value, kind):
        raise ValueError(f"option {code}: {type(value).__name__} value for a {kind} option")


def _addresses(code: int, value: OptionValue, pairs: bool) -> bytes:
    if not isinstance(value, tuple) or not value:
        raise ValueError(f"option {code}: needs a non-empty tuple of IPv4Address")
    if pairs and len(value) % 2:
        raise ValueError(f"option {code}: needs an even number of addresses")
    out = bytearray()
    for item in value:
        _want(code, item, IPv4Address)
        assert isinstance(item, IPv4Address)
        out += item.packed
    return bytes(out)


def _enc_ip(code: int, value: OptionValue) -> bytes:
    _want(code, value, IPv4Address)
    assert isinstance(value, IPv4Address)
    return value.packed


def _enc_ip_list(code: int, value: OptionValue) -> bytes:
    return _addresses(code, value, pairs=False)


def _enc_ip_pairs(code: int, value: OptionValue) -> bytes:
    return _addresses(code, value, pairs=True)


def _int_bytes(code: int, value: OptionValue, size: int, *, signed: bool = False) -> bytes:
    _want(code, value, int)
    assert isinstance(value, int)
    try:
        return value.to_bytes(size, "big", signed=signed)
    except OverflowError:
        raise ValueError(f"option {code}: {value} does not fit in {size} bytes") from None


def _enc_u8(code: int, value: OptionValue) -> bytes:
    return _int_bytes(code, value, 1)


def _enc_u16(code: int, value: OptionValue) -> bytes:
    return _int_bytes(code, value, 2)


def _enc_u32(code: int, value: OptionValue) -> bytes:
    return _int_bytes(code, value, 4)


def _enc_i32(code: int, value: OptionValue) -> bytes:
    return _int_bytes(code, value, 4, signed=True)


def _enc_bool(code: int, value: OptionValue) -> bytes:
    if not isinstance(value, int) or value not in (0, 1):
        raise ValueError(f"option {code}: needs a bool")
    return b"\x01" if value else b"\x00"


def _enc_flag(code: int, value: OptionValue) -> bytes:
    if value is not True:
        raise ValueError(f"option {code}: a flag option takes True")
    return b""


def _enc_string(code: int, value: OptionValue) -> bytes:
    _want(code, value, str)
    assert isinstance(value, str)
    if "\x00" in value:
        raise ValueError(f"option {code}: NUL in a string")
    return value.encode("utf-8")


def _enc_message_type(code: int, value: OptionValue) -> bytes:
    _want(code, value, int)
    assert isinstance(value, int)
    try:
        return bytes((MessageType(value),))
    except ValueError:
        raise ValueError(f"option {code}: unknown message type {value}") from None


def _enc_overload(code: int, value: OptionValue) -> bytes:
    if not isinstance(value, int) or value not in (1, 2, 3):
        raise ValueError(f"option {code}: overload is 1, 2 or 3")
    return bytes((value,))


def _enc_u8_list(code: int, value: OptionValue) -> bytes:
    if not isinstance(value, tuple) or not value:
        raise ValueError(f"option {code}: needs a non-empty tuple of int")
    for item in value:
        if not isinstance(item, int) or not 0 <= item <= 255:
            raise ValueError(f"option {code}: {item!r} is not a byte")
    return bytes(value)  # type: ignore[arg-type]  # checked: every item is an int


def _enc_client_id(code: int, value: OptionValue) -> bytes:
    _want(code, value, bytes)
    assert isinstance(value, bytes)
    if len(value) < 2:
        raise ValueError(f"option {code}: a client identifier needs 2 or more bytes")
    return value


def _enc_raw(code: int, value: OptionValue) -> bytes:
    _want(code, value, bytes)
    assert isinstance(value, bytes)
    return value


def _enc_domain_list(code: int, value: OptionValue) -> bytes:
    # No compression on encode: simpler, and RFC 3397 does not require it.
    if not isinstance(value, tuple):
        raise ValueError(f"option {code}: needs a tuple of str")
    out = bytearray()
    for name in value:
        _want(code, name, str)
        assert isinstance(name, str)
        wire = bytearray()
        for label in name.split(".") if name else ():
            raw = label.encode("utf-8")
            if not 1 <= len(raw) <= 63 or any(b < 0x21 or b > 0x7E or b == 0x5C for b in raw):
                raise ValueError(f"option {code}: bad label {label!r} in {name!r}")
            wire += bytes((len(raw),)) + raw
        wire.append(0)
        if len(wire) > _MAX_NAME:
            raise ValueError(f"option {code}: name {name!r} too long")
        out += wire
    return bytes(out)


def _enc_classless_routes(code: int, value: OptionValue) -> bytes:
    if not isinstance(value, tuple) or not value:
        raise ValueError(f"option {code}: needs a non-empty tuple of ClasslessRoute")
    out = bytearray()
    for route in value:
        _want(code, route, ClasslessRoute)
        assert isinstance(route, ClasslessRoute)
        width = route.destination.prefixlen
        out.append(width)
        out += route.destination.network_address.packed[: (width + 7) // 8]
        out += route.router.packed
    return bytes(out)


_Encoder = Callable[[int, OptionValue], bytes]

_ENCODERS: Final[dict[OptionKind, _Encoder]] = {
    _K.IP: _enc_ip,
    _K.IP_LIST: _enc_ip_list,
    _K.IP_PAIRS: _enc_ip_pairs,
    _K.U8: _enc_u8,
    _K.U16: _enc_u16,
    _K.U32: _enc_u32,
    _K.I32: _enc_i32,
    _K.BOOL: _enc_bool,
    _K.FLAG: _enc_flag,
    _K.STRING: _enc_string,
    _K.DOMAIN_LIST: _enc_domain_list,
    _K.CLASSLESS_ROUTES: _enc_classless_routes,
    _K.MESSAGE_TYPE: _enc_message_type,
    _K.OVERLOAD: _enc_overload,
    _K.U8_LIST: _enc_u8_list,
    _K.CLIENT_ID: _enc_client_id,
    _K.RAW: _enc_raw,
}


def encode_option(code: int, value: OptionValue) -> bytes:
    """Encode `value` as the payload of option `code` (no code or length byte).

    The inverse of `decode_option`. Raises `ValueError` for a value that does
    not fit the option's kind (caller misuse, not bad network input).
    """
    if not 1 <= code <= 254:
        raise ValueError(f"option code {code} is not 1..254")
    entry = OPTIONS.get(code)
    kind = entry[1] if entry else _K.RAW
    return _ENCODERS[kind](code, value)
