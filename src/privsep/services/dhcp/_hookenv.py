"""udhcpc's hook interface: the event names and the environment a hook script gets.

A hook script written for busybox udhcpc must work unchanged, so this module
reproduces udhcpc's formats (busybox 1.35, the version Debian 12 ships; checked
against the real binary by tests/dhcp/test_hook_compat_udhcpc.py):

- argv[1] is the event: `deconfig`, `bound`, `renew`, `leasefail` or `nak`.
- `deconfig` and `leasefail` get `interface` only.
- `bound`, `renew` and `nak` get `interface`, `ip` (yiaddr), `siaddr` and
  `giaddr` when not 0.0.0.0, `boot_file` / `sname` when not empty, and one
  variable per option: the name from udhcpc's table (`subnet`, `router`,
  `dns`, `hostname`, `domain`, `mtu`, `broadcast`, `ntpsrv`, `lease`,
  `serverid`, `search`, `staticroutes`, ...), `mask` (prefix length) next to
  `subnet`, and `optNNN=<lowercase hex>` for every code not in the table
  (53, 58 and 59 included, as udhcpc does).
- Value formats: addresses dotted and space-separated; integers decimal and
  space-separated when an option repeats them; option 33 `dest/router`;
  121/249 `dest/len router` pairs; 119 names space-separated; strings as
  sent, cut at the first NUL (C string semantics).
- udhcpc quirks kept on purpose, since scripts depend on what they see:
  `timezone` (option 2, signed) prints as unsigned 32-bit, as udhcpc does on
  64-bit hosts; the "host" strings (hostname 12, domain 15, nisdomain 40,
  tftp 66) are replaced by "bad" (cut to the option length - 1) unless they
  hold only letters, digits, `-`, `_`, `.` and do not start with `-`
  (udhcpc's sanitizing, which Debian enables); an option too short for its
  type gives an empty value; a malformed 119/120 gives an empty value.

Values are data: they are built here and passed as an environment to an
execve by `_hookrun`, never through a shell of ours. Bytes that are not UTF-8
are carried with `surrogateescape` (`os.fsencode` gives back the exact bytes).
An environment cannot carry NUL, and none is produced: strings are cut at the
first NUL like udhcpc's C strings.

The input is neutral: `LeaseFacts` (typed fields for what the engine
understands plus `extra`, every other option raw). `facts_from_message` builds
it from a DHCPACK/DHCPNAK, `facts_from_lease` from the engine's `Lease`. Typed
fields are turned back into option payloads and formatted by the same table
as raw options, so both paths give udhcpc's exact strings.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Final

from privsep._errors import PrivsepError
from privsep.services.dhcp._options import ClasslessRoute, encode_option
from privsep.services.dhcp._udhcpc_table import UDHCPC_OPTIONS, Kind

if TYPE_CHECKING:
    from privsep.services.dhcp._lease import Lease
    from privsep.services.dhcp._message import Message

_UNSPECIFIED: Final = IPv4Address(0)


class HookEvent(enum.Enum):
    """udhcpc's hook events (argv[1] of the script)."""

    DECONFIG = "deconfig"
    BOUND = "bound"
    RENEW = "renew"
    LEASEFAIL = "leasefail"
    NAK = "nak"


class HookEnvError(PrivsepError, ValueError):
    """Facts that cannot become a hook environment (caller misuse)."""


# -- the facts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseFacts:
    """What a DHCP reply told us, neutral of any client's format.

    Every field maps to one option (or BOOTP field); `extra` holds any other
    option as raw `(code, payload)` pairs. A code may appear only once, either
    as a typed field or in `extra`.
    """

    address: IPv4Address  # yiaddr; 0.0.0.0 in a NAK
    prefix_len: int | None = None  # option 1
    routers: tuple[IPv4Address, ...] = ()  # 3
    dns: tuple[IPv4Address, ...] = ()  # 6
    hostname: str | None = None  # 12
    domain: str | None = None  # 15
    mtu: int | None = None  # 26
    broadcast: IPv4Address | None = None  # 28
    ntp: tuple[IPv4Address, ...] = ()  # 42
    lease_time: int | None = None  # 51
    server_id: IPv4Address | None = None  # 54
    search: tuple[str, ...] = ()  # 119
    classless_routes: tuple[ClasslessRoute, ...] = ()  # 121
    siaddr: IPv4Address = _UNSPECIFIED
    giaddr: IPv4Address = _UNSPECIFIED
    sname: bytes = b""
    boot_file: bytes = b""
    extra: tuple[tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        for name in ("address", "siaddr", "giaddr"):
            if not isinstance(getattr(self, name), IPv4Address):
                raise HookEnvError(f"{name} must be an IPv4Address")
        if self.prefix_len is not None and not (
            isinstance(self.prefix_len, int) and 0 <= self.prefix_len <= 32
        ):
            raise HookEnvError("prefix_len must be 0..32")
        for name in ("sname", "boot_file"):
            if not isinstance(getattr(self, name), bytes):
                raise HookEnvError(f"{name} must be bytes")
        typed = {code for code, value in self._typed_payloads()}
        seen: set[int] = set()
        for item in self.extra:
            if not (
                isinstance(item, tuple)
                and len(item) == 2
                and isinstance(item[0], int)
                and 1 <= item[0] <= 254
                and isinstance(item[1], bytes)
            ):
                raise HookEnvError(f"extra must hold (code 1..254, bytes) pairs, not {item!r}")
            if item[0] in typed or item[0] in seen:
                raise HookEnvError(f"option {item[0]} given twice")
            seen.add(item[0])

    def _typed_payloads(self) -> list[tuple[int, bytes]]:
        try:
            return _typed_payloads(self)
        except ValueError as exc:  # encode_option's complaint about a bad value
            raise HookEnvError(str(exc)) from None

    def options(self) -> list[tuple[int, bytes]]:
        """Every option as `(code, payload)`, in code order."""
        return sorted([*self._typed_payloads(), *self.extra], key=lambda item: item[0])


def _typed_payloads(facts: LeaseFacts) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    if facts.prefix_len is not None:
        out.append((1, IPv4Network(f"0.0.0.0/{facts.prefix_len}").netmask.packed))
    lists = ((3, facts.routers), (6, facts.dns), (42, facts.ntp))
    out += [(code, encode_option(code, value)) for code, value in lists if value]
    for code, text in ((12, facts.hostname), (15, facts.domain)):
        if text is not None:
            out.append((code, encode_option(code, text)))
    if facts.mtu is not None:
        out.append((26, encode_option(26, facts.mtu)))
    if facts.broadcast is not None:
        out.append((28, encode_option(28, facts.broadcast)))
    if facts.lease_time is not None:
        out.append((51, encode_option(51, facts.lease_time)))
    if facts.server_id is not None:
        out.append((54, encode_option(54, facts.server_id)))
    if facts.search:
        out.append((119, encode_option(119, facts.search)))
    if facts.classless_routes:
        out.append((121, encode_option(121, facts.classless_routes)))
    return out


# The options LeaseFacts holds in typed fields; every other one travels in `extra`.
_TYPED_CODES: Final = frozenset({1, 3, 6, 12, 15, 26, 28, 42, 51, 54, 119, 121})


def facts_from_message(message: Message) -> LeaseFacts:
    """The facts of a DHCPACK (or DHCPNAK), every option kept.

    Options with a typed field are decoded by the codec (the message was
    validated when it was decoded); all others go to `extra` unchanged, and so
    does a subnet mask that is not contiguous (it has no prefix length).
    """

    def addresses(code: int) -> tuple[IPv4Address, ...]:
        value = message.get(code)
        return (
            tuple(a for a in value if isinstance(a, IPv4Address))
            if isinstance(value, tuple)
            else ()
        )

    def text(code: int) -> str | None:
        value = message.get(code)
        return value if isinstance(value, str) else None

    def number(code: int) -> int | None:
        value = message.get(code)
        return value if isinstance(value, int) else None

    def address(code: int) -> IPv4Address | None:
        value = message.get(code)
        return value if isinstance(value, IPv4Address) else None

    prefix_len: int | None = None
    mask = address(1)
    if mask is not None and int(mask) == (0xFFFFFFFF << (32 - _mton(int(mask)))) & 0xFFFFFFFF:
        prefix_len = _mton(int(mask))
    search = message.get(119)
    routes = message.get(121)
    return LeaseFacts(
        address=message.yiaddr,
        prefix_len=prefix_len,
        routers=addresses(3),
        dns=addresses(6),
        hostname=text(12),
        domain=text(15),
        mtu=number(26),
        broadcast=address(28),
        ntp=addresses(42),
        lease_time=number(51),
        server_id=address(54),
        search=tuple(n for n in search if isinstance(n, str)) if isinstance(search, tuple) else (),
        classless_routes=(
            tuple(r for r in routes if isinstance(r, ClasslessRoute))
            if isinstance(routes, tuple)
            else ()
        ),
        siaddr=message.siaddr,
        giaddr=message.giaddr,
        sname=message.sname,
        boot_file=message.file,
        extra=tuple(
            (code, payload)
            for code, payload in message.options
            if code not in _TYPED_CODES or (code == 1 and prefix_len is None)
        ),
    )


def facts_from_lease(lease: Lease) -> LeaseFacts:
    """The facts of the engine's `Lease` (which keeps other options in `extra`).

    The engine drops option 3 when classless routes came with the lease (RFC
    3442); unless it kept the raw option in `extra`, `router` is then absent
    where udhcpc would still export it.
    """
    typed = LeaseFacts(
        address=lease.address,
        prefix_len=lease.prefix_len,
        routers=lease.routers,
        dns=lease.dns,
        hostname=lease.hostname,
        domain=lease.domain,
        mtu=lease.mtu,
        broadcast=lease.broadcast,
        ntp=lease.ntp,
        lease_time=lease.lease_time,
        server_id=lease.server_id,
        search=lease.search,
        classless_routes=lease.classless_routes,
    )
    present = {code for code, _ in typed.options()}
    extra = tuple((code, payload) for code, payload in lease.extra if code not in present)
    return replace(typed, extra=extra)


# -- udhcpc's formats -----------------------------------------------------------------


_K = Kind


_WIDTH: Final = {
    _K.IP: 4,
    _K.IP_PAIR: 8,
    _K.U8: 1,
    _K.U16: 2,
    _K.U32: 4,
    _K.S32: 4,
}


def _text(data: bytes) -> str:
    """A C string: cut at the first NUL; non-UTF-8 bytes kept via surrogateescape."""
    return data.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def _dotted(data: bytes) -> str:
    return ".".join(str(b) for b in data[:4])


def _mton(mask: int) -> int:
    """udhcpc's prefix length: bits up to the lowest set bit (24 for 255.0.255.0)."""
    count = 0
    while mask:
        count += 1
        mask = (mask << 1) & 0xFFFFFFFF
    return count


def _good_hostname(data: bytes) -> bool:
    if data.startswith(b"-"):
        return False
    return all((chr(b).isalnum() and b < 0x80) or b in b"-_." for b in data)


def _string_host(payload: bytes) -> str:
    value = payload.split(b"\x00", 1)[0]
    if _good_hostname(value):
        return _text(value)
    # udhcpc copies "bad" into a buffer of the option's length (with its NUL).
    return "bad"[: max(len(payload) - 1, 0)]


def _static_routes(payload: bytes) -> str:
    parts: list[str] = []
    pos, left = 0, len(payload)
    while left >= 5:
        width = payload[pos]
        if width > 32:
            break
        pos, left = pos + 1, left - 1
        octets = (width + 7) // 8
        dest = payload[pos : pos + octets] + bytes(4 - octets)
        pos, left = pos + octets, left - octets
        if left < 4:
            break
        parts.append(f"{_dotted(dest)}/{width} {_dotted(payload[pos : pos + 4])}")
        pos, left = pos + 4, left - 4
    return " ".join(parts)


def _dname_list(data: bytes) -> str | None:
    """RFC 1035 names (with compression) as udhcpc's dname_dec writes them."""
    out = bytearray()
    pos = ret = depth = 0
    while pos < len(data):
        byte = data[pos]
        if byte & 0xC0 == 0xC0:
            if pos + 2 > len(data):
                return None
            if ret == 0:
                ret = pos + 2
            depth += 1
            pos = ((byte & 0x3F) << 8) | data[pos + 1]
        elif byte:
            if pos + byte + 1 > len(data):
                return None
            out += data[pos + 1 : pos + 1 + byte] + b"."
            pos += byte + 1
        else:
            if ret == 0:
                pos += 1
            else:
                pos, ret, depth = ret, 0, 0
            if out:
                out[-1:] = b" "
        if depth > 6 or len(out) > 1025 * 6:  # a loop, or too long
            return None
    if not out:
        return None
    return _text(bytes(out[:-1]))


def _numbers(kind: Kind, payload: bytes) -> str:
    width = _WIDTH[kind]
    items: list[str] = []
    for pos in range(0, len(payload) - width + 1, width):
        chunk = payload[pos : pos + width]
        if kind is _K.IP:
            items.append(_dotted(chunk))
        elif kind is _K.IP_PAIR:
            items.append(f"{_dotted(chunk)}/{_dotted(chunk[4:])}")
        else:
            # S32 too: udhcpc prints it through an unsigned long, so -1 is 4294967295.
            items.append(str(int.from_bytes(chunk, "big")))
    return " ".join(items)


def _sixrd(payload: bytes) -> str:
    if len(payload) < 22 or payload[0] > 32 or payload[1] + 32 - payload[0] > 128:
        return ""
    prefix = ":".join(payload[i : i + 2].hex() for i in range(2, 18, 2))
    return f"{payload[0]} {payload[1]} {prefix} {_numbers(_K.IP, payload[18:])}"


def _sip_servers(payload: bytes) -> str:
    if not payload:
        return ""
    if payload[0] == 1:
        return _numbers(_K.IP, payload[1:])
    if payload[0] == 0:
        return _dname_list(payload[1:]) or ""
    return ""


_FORMATTERS: Final[dict[Kind, Callable[[bytes], str]]] = {
    _K.STRING: _text,
    _K.STRING_HOST: _string_host,
    _K.STATIC_ROUTES: _static_routes,
    _K.SIXRD: _sixrd,
    _K.DNS_STRING: lambda payload: _dname_list(payload) or "",
    _K.SIP_SERVERS: _sip_servers,
}


def format_option(code: int, payload: bytes) -> tuple[str, str]:
    """One option as udhcpc's `(name, value)`: `("router", "10.0.0.1 10.0.0.2")`."""
    entry = UDHCPC_OPTIONS.get(code)
    if entry is None:
        return f"opt{code}", payload.hex()
    name, kind = entry
    formatter = _FORMATTERS.get(kind)
    if formatter is not None:
        return name, formatter(payload)
    return name, _numbers(kind, payload)


def _check_interface(interface: str) -> None:
    if not interface or "\x00" in interface or "=" in interface:
        raise HookEnvError(f"bad interface name {interface!r}")


def hook_env(event: HookEvent, interface: str, facts: LeaseFacts | None = None) -> dict[str, str]:
    """The environment udhcpc gives its script for `event` (PATH not included).

    `deconfig` and `leasefail` take no facts; `bound`, `renew` and `nak` need
    them (for `nak`, the facts of the DHCPNAK itself, as udhcpc exports it).
    """
    _check_interface(interface)
    env = {"interface": interface}
    if event in (HookEvent.DECONFIG, HookEvent.LEASEFAIL):
        if facts is not None:
            raise HookEnvError(f"udhcpc passes no lease to {event.value}")
        return env
    if facts is None:
        raise HookEnvError(f"{event.value} needs the facts of the reply")
    for code, payload in facts.options():
        name, value = format_option(code, payload)
        env[name] = value
        if code == 1 and len(payload) == 4:
            env["mask"] = str(_mton(int.from_bytes(payload, "big")))
    env["ip"] = str(facts.address)
    if facts.siaddr != _UNSPECIFIED:
        env["siaddr"] = str(facts.siaddr)
    if facts.giaddr != _UNSPECIFIED:
        env["giaddr"] = str(facts.giaddr)
    if facts.boot_file[:1] not in (b"", b"\x00"):
        env["boot_file"] = _text(facts.boot_file[:128])
    if facts.sname[:1] not in (b"", b"\x00"):
        env["sname"] = _text(facts.sname[:64])
    return env
