"""The host-name rule and resolv.conf bounds, shared by every process that checks them.

The engine leaves out what the actuator would refuse, the actuator checks the
engine's values, and `dhcp-resolv` checks them once more before writing: three
checks across two process boundaries, on purpose, all against this one rule.
Kept apart from `_resolvconf` so the engine does not import its file handling
(tempfile, pathlib: ~4 ms at start).
"""

from __future__ import annotations

import re
from typing import Final

MAX_NAMESERVERS: Final = 8
MAX_SEARCH: Final = 6  # glibc's historical MAXDNSRCH
MAX_SEARCH_CHARS: Final = 256

# RFC 952/1123 host names: letters, digits, hyphens; dot-separated labels of
# 1..63 characters, not starting or ending with a hyphen; 253 characters in all
# (an optional final dot aside). Underscores, spaces, quotes, `$`, `;`, newlines:
# rejected, never escaped.
_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?", re.ASCII)


def is_hostname(name: str) -> bool:
    """True for a DNS name made of hostname characters only (see `_HOSTNAME_RE`)."""
    return len(name.rstrip(".")) <= 253 and _HOSTNAME_RE.fullmatch(name) is not None
