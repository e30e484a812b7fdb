"""The lab's own udhcpc hook script: configures the interface with `ip`, and writes DNS
only to a file in the lab's temp dir (never /etc/resolv.conf).

udhcpc passes the lease in environment variables (`ip`, `mask` as a prefix length,
`router`, `dns`, `domain`, `search`, `lease`, `mtu`, `staticroutes`, ...). The script
also records them in `$PRIVSEP_LAB_ENV` so tests can read what the client was told.
"""

from __future__ import annotations

from pathlib import Path

HOOK_NAME = "udhcpc-hook.sh"
HOOK_SCRIPT = r"""#!/bin/sh
# privsep lab hook for busybox udhcpc. Writes only $PRIVSEP_LAB_RESOLV and $PRIVSEP_LAB_ENV.
set -u
: "${PRIVSEP_LAB_RESOLV:?}" "${PRIVSEP_LAB_ENV:?}"
event="$1"
{
    printf 'event=%s\n' "$event"
    for var in interface ip subnet mask broadcast router dns domain search lease serverid \
               mtu staticroutes hostname; do
        eval "val=\${$var-}"
        printf '%s=%s\n' "$var" "$val"
    done
} > "$PRIVSEP_LAB_ENV.tmp" && mv "$PRIVSEP_LAB_ENV.tmp" "$PRIVSEP_LAB_ENV"

case "$event" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set dev "$interface" up
    ;;
bound|renew)
    if [ -n "${mtu-}" ]; then ip link set dev "$interface" mtu "$mtu"; fi
    ip -4 addr replace "$ip/${mask:-32}" dev "$interface" ${broadcast:+broadcast "$broadcast"} \
        valid_lft "${lease:-forever}" preferred_lft "${lease:-forever}"
    ip -4 route flush dev "$interface" proto static 2>/dev/null
    if [ -n "${staticroutes-}" ]; then
        # RFC 3442: with classless routes present the router option is ignored.
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            if [ "$2" = 0.0.0.0 ]; then
                ip -4 route replace "$1" dev "$interface" proto static
            else
                ip -4 route replace "$1" via "$2" dev "$interface" proto static
            fi
            shift 2
        done
    else
        metric=0
        for r in ${router-}; do
            ip -4 route add default via "$r" dev "$interface" metric "$metric" proto static
            metric=$((metric + 1))
        done
    fi
    {
        if [ -n "${search-}" ]; then echo "search $search";
        elif [ -n "${domain-}" ]; then echo "search $domain"; fi
        for d in ${dns-}; do echo "nameserver $d"; done
    } > "$PRIVSEP_LAB_RESOLV"
    ;;
esac
exit 0
"""


def install_hook(directory: Path) -> Path:
    """Write the hook script into `directory` and return its path."""
    path = directory / HOOK_NAME
    path.write_text(HOOK_SCRIPT)
    path.chmod(0o755)
    return path


def parse_env(text: str) -> dict[str, str]:
    """The `key=value` lines the hook wrote (empty values dropped)."""
    env = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and value:
            env[key] = value
    return env
