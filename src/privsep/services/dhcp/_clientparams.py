"""The engine's `ClientConfig` from the layout's parameters (strings, as `--set` gives them).

`privsep dhcp` builds the parameters from udhcpc's options and checks them here
before starting anything; `dhcp-engine` builds its config with the same code.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import cast

from privsep.services.dhcp._config import ClientConfig, ClientIdMode


def flag(value: str) -> bool:
    return value.strip().lower() in ("1", "yes", "true", "on")


def _extra_options(text: str) -> tuple[tuple[int, bytes], ...]:
    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        code, _, payload = item.partition(":")
        out.append((int(code, 0), bytes.fromhex(payload)))
    return tuple(out)


def config_from_params(params: dict[str, str], mac: bytes) -> ClientConfig:
    """The engine's ClientConfig from the layout parameters (`privsep dhcp` sets them)."""
    p = params
    return ClientConfig(
        mac=mac,
        client_id=bytes.fromhex(p["client_id"]) if p.get("client_id") else None,
        client_id_mode=cast(ClientIdMode, p.get("client_id_mode") or "rfc4361"),
        hostname=p.get("hostname") or None,
        vendor_class=p["vendor"].encode() if p.get("vendor") else None,
        requested_address=IPv4Address(p["requested"]) if p.get("requested") else None,
        request_options=tuple(
            int(c, 0) for c in p.get("request_options", "").split(",") if c.strip()
        ),
        default_request_options=flag(p.get("default_options", "1")),
        extra_options=_extra_options(p.get("extra_options", "")),
        arp_probe=flag(p.get("arp_probe", "1")),
        discover_tries=int(p["tries"]) if p.get("tries") else None,
        discover_interval=float(p["interval"]) if p.get("interval") else None,
        failure_pause=float(p.get("failure_pause") or 20),
        min_retry=float(p.get("min_retry") or 60),
    )
