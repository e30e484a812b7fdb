"""ClientConfig: everything the DHCP client engine is told up front (udhcpc's options)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Final, Literal

from privsep._errors import MalformedPacket, PrivsepError
from privsep.services.dhcp._options import OptionCode, decode_option

# Option 55 unless the caller adds more (-O): what udhcpc, dhcpcd and systemd ask for.
DEFAULT_REQUEST_OPTIONS: Final[tuple[int, ...]] = (
    1,
    3,
    6,
    12,
    15,
    26,
    28,
    42,
    51,
    54,
    58,
    59,
    119,
    121,
)

# Options the engine writes itself; `extra_options` may not set them (it would
# desynchronise the exchange the engine tracks).
_ENGINE_OWNED: Final = frozenset(
    {
        OptionCode.PAD,
        OptionCode.REQUESTED_ADDRESS,
        OptionCode.OVERLOAD,
        OptionCode.MESSAGE_TYPE,
        OptionCode.SERVER_ID,
        OptionCode.PARAMETER_REQUEST_LIST,
        OptionCode.MAX_MESSAGE_SIZE,
        OptionCode.CLIENT_ID,
        OptionCode.RAPID_COMMIT,
        OptionCode.END,
    }
)

# What the caller's own options may add up to, so every message we send fits 1472 bytes.
_MAX_CARRIED: Final = 600

ClientIdMode = Literal["rfc4361", "mac", "none"]


class InvalidConfig(PrivsepError, ValueError):
    """A ClientConfig value out of range (caller error, raised at construction)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """Options of one DHCP client; defaults follow RFC 2131 (udhcpc's in brackets).

    - `mac`: the interface's 6-byte hardware address.
    - `client_id` (option 61) bytes override `client_id_mode`: "rfc4361" (default,
      type 255 + IAID + DUID-LL from the MAC), "mac" (type 1 + MAC, like udhcpc)
      or "none". `iaid` defaults to the MAC's last 4 bytes.
    - `hostname` (12, `-x hostname:`), `vendor_class` (60, `-V`), `requested_address`
      (50 in DHCPDISCOVER, `-r`), `request_options` (added to option 55, `-O`),
      `extra_options` (raw (code, payload) pairs, `-x code:hex`).
    - `default_request_options`: False asks only for `request_options` (udhcpc's
      `-o`); with none, option 55 is left out.
    - `discover_tries` (`-t`, None = retry forever with RFC backoff),
      `discover_interval` (`-T`: a fixed pause instead of 4, 8, ... 64 s ±1),
      `failure_pause` (`-A`: wait after `discover_tries` failed, then start over).
    - `request_tries`: DHCPREQUESTs in REQUESTING before starting over (RFC backoff).
    - `reboot_tries`: INIT-REBOOT DHCPREQUESTs before giving up on the saved lease.
    - `min_retry`: floor of the RENEWING/REBINDING retransmission interval (60 s
      per RFC 2131 §4.4.5; tests with short leases lower it).
    - `decline_backoff` (≥ 10 s per RFC 2131 §3.1.5 in production), `nak_backoff`
      (first wait after a DHCPNAK; doubles per consecutive NAK up to 64 s).
    - `arp_probe`: RFC 5227 probing before BOUND, and announcements after.
    - `rapid_commit` (RFC 4039), `ipv6_only_preferred` (RFC 8925 option 108).
    - `allow_broad_routes`: keep TunnelVision-style routes (see _routes_policy).
    - `max_message_size` (option 57): 1472 = 1500 - IP - UDP headers, which fits
      an Ethernet MTU whichever way a server reads the option.
    """

    mac: bytes
    client_id: bytes | None = None
    client_id_mode: ClientIdMode = "rfc4361"
    iaid: int | None = None
    hostname: str | None = None
    vendor_class: bytes | None = None
    requested_address: IPv4Address | None = None
    request_options: tuple[int, ...] = ()
    default_request_options: bool = True
    extra_options: tuple[tuple[int, bytes], ...] = ()
    max_message_size: int = 1472
    rapid_commit: bool = False
    ipv6_only_preferred: bool = False
    arp_probe: bool = True
    allow_broad_routes: bool = False
    discover_tries: int | None = None
    discover_interval: float | None = None
    failure_pause: float = 20.0
    request_tries: int = 4
    reboot_tries: int = 2
    min_retry: float = 60.0
    decline_backoff: float = 10.0
    nak_backoff: float = 3.0

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise InvalidConfig("; ".join(problems))

    def _problems(self) -> list[str]:
        out: list[str] = []
        if not isinstance(self.mac, bytes) or len(self.mac) != 6:
            out.append("mac must be 6 bytes")
        elif self.mac[0] & 1 or self.mac == bytes(6):
            out.append("mac must be a unicast address")
        if self.client_id is not None and not 2 <= len(self.client_id) <= 255:
            out.append("client_id must be 2..255 bytes")
        if self.client_id_mode not in ("rfc4361", "mac", "none"):
            out.append("client_id_mode must be rfc4361, mac or none")
        if self.iaid is not None and not 0 <= self.iaid <= 0xFFFFFFFF:
            out.append("iaid must fit in 32 bits")
        if self.hostname is not None and not 1 <= len(self.hostname.encode()) <= 255:
            out.append("hostname must be 1..255 bytes")
        if self.hostname is not None and "\x00" in self.hostname:
            out.append("hostname must not contain NUL")
        if self.vendor_class is not None and not 1 <= len(self.vendor_class) <= 255:
            out.append("vendor_class must be 1..255 bytes")
        if any(not 1 <= code <= 254 for code in self.request_options):
            out.append("request_options codes must be 1..254")
        for code, payload in self.extra_options:
            if not 1 <= code <= 254 or code in _ENGINE_OWNED:
                out.append(f"extra option {code} is not allowed")
            if len(payload) > 255:
                out.append(f"extra option {code} is longer than 255 bytes")
            else:
                try:
                    decode_option(code, payload)
                except MalformedPacket as exc:
                    out.append(f"extra option {code}: {exc}")
        carried = sum(len(p) + 2 for _, p in self.extra_options)
        carried += len((self.hostname or "").encode()) + len(self.vendor_class or b"")
        if carried > _MAX_CARRIED:
            out.append(f"hostname, vendor class and extra options exceed {_MAX_CARRIED} bytes")
        if not 576 <= self.max_message_size <= 65535:
            out.append("max_message_size must be 576..65535")
        if self.discover_tries is not None and self.discover_tries < 1:
            out.append("discover_tries must be at least 1")
        for name in ("request_tries", "reboot_tries"):
            if getattr(self, name) < 1:
                out.append(f"{name} must be at least 1")
        if self.discover_interval is not None and not self.discover_interval > 0:
            out.append("discover_interval must be positive")
        for name in ("failure_pause", "min_retry", "decline_backoff", "nak_backoff"):
            if not getattr(self, name) > 0:
                out.append(f"{name} must be positive")
        return out

    @property
    def client_identifier(self) -> bytes | None:
        """Option 61's payload, or None to send none."""
        if self.client_id is not None:
            return self.client_id
        if self.client_id_mode == "mac":
            return b"\x01" + self.mac
        if self.client_id_mode == "none":
            return None
        iaid = self.iaid if self.iaid is not None else int.from_bytes(self.mac[2:], "big")
        duid_ll = b"\x00\x03\x00\x01" + self.mac  # DUID-LL, hardware type 1 (Ethernet)
        return b"\xff" + iaid.to_bytes(4, "big") + duid_ll

    @property
    def parameter_request_list(self) -> tuple[int, ...]:
        """Option 55: the defaults (unless turned off), the caller's extras, 108 if wanted."""
        codes = list(DEFAULT_REQUEST_OPTIONS) if self.default_request_options else []
        extras = [*self.request_options]
        if self.ipv6_only_preferred:
            extras.append(OptionCode.IPV6_ONLY_PREFERRED)
        for code in extras:
            if code not in codes:
                codes.append(int(code))
        return tuple(codes)
