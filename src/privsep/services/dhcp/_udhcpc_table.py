"""udhcpc's option table (busybox 1.35 as built by Debian): code -> (name, type).

One table for both directions: `_hookenv` formats received options into the hook's
variables by it, and `privsep dhcp -x NAME:VALUE` (`privsep._cli._dhcp_options`)
writes options by it. Kept small: the CLI imports it at start-up.
Codes missing here (50, 53, 57, 58, 59, 61, ...) are optNNN to a hook.
"""

from __future__ import annotations

import enum
from typing import Final


class Kind(enum.Enum):
    """udhcpc's option types (OPTION_* in networking/udhcp/common.h)."""

    IP = "ip"
    IP_PAIR = "ip_pair"
    STRING = "string"
    STRING_HOST = "string_host"
    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    S32 = "s32"
    STATIC_ROUTES = "static_routes"
    SIXRD = "6rd"
    DNS_STRING = "dns_string"
    SIP_SERVERS = "sip_servers"


_K = Kind

UDHCPC_OPTIONS: Final[dict[int, tuple[str, Kind]]] = {
    1: ("subnet", _K.IP),
    2: ("timezone", _K.S32),
    3: ("router", _K.IP),
    6: ("dns", _K.IP),
    9: ("lprsrv", _K.IP),
    12: ("hostname", _K.STRING_HOST),
    13: ("bootsize", _K.U16),
    15: ("domain", _K.STRING_HOST),
    16: ("swapsrv", _K.IP),
    17: ("rootpath", _K.STRING),
    23: ("ipttl", _K.U8),
    26: ("mtu", _K.U16),
    28: ("broadcast", _K.IP),
    33: ("routes", _K.IP_PAIR),
    40: ("nisdomain", _K.STRING_HOST),
    41: ("nissrv", _K.IP),
    42: ("ntpsrv", _K.IP),
    44: ("wins", _K.IP),
    51: ("lease", _K.U32),
    54: ("serverid", _K.IP),
    56: ("message", _K.STRING),
    60: ("vendor", _K.STRING),
    66: ("tftp", _K.STRING_HOST),
    67: ("bootfile", _K.STRING),
    100: ("tzstr", _K.STRING),
    101: ("tzdbstr", _K.STRING),
    119: ("search", _K.DNS_STRING),
    120: ("sipsrv", _K.SIP_SERVERS),
    121: ("staticroutes", _K.STATIC_ROUTES),
    132: ("vlanid", _K.U16),
    133: ("vlanpriority", _K.U8),
    209: ("pxeconffile", _K.STRING),
    210: ("pxepathprefix", _K.STRING),
    211: ("reboottime", _K.U32),
    212: ("ip6rd", _K.SIXRD),
    249: ("msstaticroutes", _K.STATIC_ROUTES),
    252: ("wpad", _K.STRING),
}
