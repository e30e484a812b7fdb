"""The DHCP clients bench/lease.py compares, and how each one is started without ever
touching the host's state.

Peers (udhcpc, dhclient, dhcpcd) run in their lab node through `ip netns exec` (which
gives a private mount namespace) and `WRAPPER`, which bind-mounts per-client temp dirs
over /run, /var/lib/dhcp, /var/lib/dhcpcd and a temp file over /etc/resolv.conf, then
records $EPOCHREALTIME and execs the client. privsep runs from the host namespace with
`--netns` (its supervisor opens the sockets in the client's namespace), through the same
wrapper minus the mounts, so "exec" means the same moment for every client.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, final

from privsep.testing import Node

Mode = Literal["oneshot", "daemon"]
FAMILIES: Final = ("udhcpc", "dhclient", "dhcpcd", "privsep")

WRAPPER: Final = r"""#!/bin/bash
# bench/lease.py client wrapper: wrap.sh STAMPFILE MOUNTDIR|- CMD...
# With MOUNTDIR, hide host state behind per-client temp dirs first (only in a private
# mount namespace, which `ip netns exec` provides; refuses otherwise).
set -eu
stamp=$1 mounts=$2
shift 2
if [ "$mounts" != - ]; then
    if [ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ]; then
        echo "wrap.sh: not in a private mount namespace, refusing to bind-mount" >&2
        exit 99
    fi
    mkdir -p "$mounts/run" "$mounts/var-lib-dhcp" "$mounts/var-lib-dhcpcd"
    : > "$mounts/resolv.conf"
    if [ -f /etc/resolv.conf ] && [ ! -L /etc/resolv.conf ]; then
        mount --bind "$mounts/resolv.conf" /etc/resolv.conf
    fi
    mount --bind "$mounts/run" /run
    [ -d /var/lib/dhcp ] && mount --bind "$mounts/var-lib-dhcp" /var/lib/dhcp
    [ -d /var/lib/dhcpcd ] && mount --bind "$mounts/var-lib-dhcpcd" /var/lib/dhcpcd
fi
printf '%s\n' "$EPOCHREALTIME" > "$stamp"
exec "$@"
"""

# dhcpcd's hooks that write host files or set the hostname.
_HOOKS: Final = ("resolv.conf", "hostname", "ntp-common.conf", "chrony.conf", "timesyncd.conf")
_DHCPCD_HOOKS_OFF: Final = [arg for hook in (*_HOOKS, "openntpd.conf") for arg in ("-C", hook)]


@final
@dataclass(frozen=True, slots=True)
class Files:
    """Per-client paths inside the lab's temp dir."""

    directory: Path  # the node's directory
    wrapper: Path
    dhclient_script: Path
    privsep: str  # the privsep executable

    @property
    def mounts(self) -> Path:
        return self.directory / "mounts"  # kept across runs: dhcpcd's DUID lives there

    @property
    def resolv_conf(self) -> Path:
        return self.directory / "resolv.conf"

    @property
    def dhclient_leases(self) -> Path:
        return self.directory / "dhclient.leases"

    @property
    def dhclient_pid(self) -> Path:
        return self.directory / "dhclient.pid"

    def reset(self) -> None:
        """Forget every lease between runs (each run starts from INIT, like the
        reference baseline); keep dhcpcd's DUID so it stays the same client."""
        self.dhclient_leases.unlink(missing_ok=True)
        self.dhclient_pid.unlink(missing_ok=True)
        for lease in (self.mounts / "var-lib-dhcpcd").glob("*.lease*"):
            lease.unlink()
        shutil.rmtree(self.directory / "privsep-state", ignore_errors=True)


@final
@dataclass(frozen=True, slots=True)
class Variant:
    """One way of running one client: `family` (udhcpc, ...) with or without ARP."""

    name: str
    family: str
    arp: bool
    description: str
    argv: Callable[[Node, Files, Mode], list[str]]


def _busybox() -> str:
    return shutil.which("busybox") or "/bin/busybox"


def privsep_executable() -> str:
    """The venv running this bench, else the checkout's venv, else PATH."""
    venv = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "privsep"
    for candidate in (Path(sys.executable).parent / "privsep", venv):
        if candidate.exists():
            return str(candidate)
    return shutil.which("privsep") or "privsep"


def _udhcpc(extra: list[str]) -> Callable[[Node, Files, Mode], list[str]]:
    def argv(node: Node, files: Files, mode: Mode) -> list[str]:
        quit_ = ["-q"] if mode == "oneshot" else []
        hook = ["-s", str(node.hook_script)]
        return [_busybox(), "udhcpc", "-f", *quit_, "-n", *extra, "-i", node.interface, *hook]

    return argv


def _dhclient(node: Node, files: Files, mode: Mode) -> list[str]:
    once = ["-1"] if mode == "oneshot" else []
    return [
        "dhclient",
        *once,
        "-v",
        "-sf",
        str(files.dhclient_script),
        "-lf",
        str(files.dhclient_leases),
        "-pf",
        str(files.dhclient_pid),
        node.interface,
    ]


def _dhcpcd(extra: list[str]) -> Callable[[Node, Files, Mode], list[str]]:
    def argv(node: Node, files: Files, mode: Mode) -> list[str]:
        once = ["-1"] if mode == "oneshot" else []
        return ["dhcpcd", "-4", *once, "-B", *extra, *_DHCPCD_HOOKS_OFF, node.interface]

    return argv


def _privsep(arp: bool) -> Callable[[Node, Files, Mode], list[str]]:
    def argv(node: Node, files: Files, mode: Mode) -> list[str]:
        quit_ = ["-q"] if mode == "oneshot" else []
        return [
            files.privsep,
            "dhcp",
            node.interface,
            "-f",
            *quit_,
            "-n",
            "--netns",
            node.netns,
            "--arp-probe" if arp else "--no-arp-probe",
            "--state-dir",
            str(files.directory / "privsep-state"),
            "--resolv-conf",
            str(files.resolv_conf),
        ]

    return argv


VARIANTS: Final = (
    Variant("udhcpc", "udhcpc", False, "busybox udhcpc -f -q -n + lab hook", _udhcpc([])),
    Variant("dhclient", "dhclient", False, "dhclient -1 (no ARP check exists)", _dhclient),
    Variant(
        "dhcpcd -A", "dhcpcd", False, "dhcpcd -4 -1 -B -A --nodelay", _dhcpcd(["-A", "--nodelay"])
    ),
    Variant("privsep", "privsep", False, "privsep dhcp -f -q -n --no-arp-probe", _privsep(False)),
    Variant("udhcpc -a", "udhcpc", True, "udhcpc -a: ARP-checks the offer (2 s)", _udhcpc(["-a"])),
    Variant("dhcpcd", "dhcpcd", True, "dhcpcd defaults: 0-2 s delay + RFC 5227", _dhcpcd([])),
    Variant("privsep --arp", "privsep", True, "privsep dhcp --arp-probe", _privsep(True)),
)


def install(directory: Path, resolv_target: Path) -> tuple[Path, Path]:
    """Write the wrapper and a dhclient-script copy that writes DNS to `resolv_target`
    and never sets the hostname (`ip netns exec` shares the host's UTS namespace)."""
    wrapper = directory / "wrap.sh"
    wrapper.write_text(WRAPPER)
    wrapper.chmod(0o755)
    script = Path("/sbin/dhclient-script").read_text()
    script = script.replace("/etc/resolv.conf", str(resolv_target))
    script = re.sub(r'^(\s*)hostname "\$new_host_name"', r"\1:", script, flags=re.MULTILINE)
    dhclient_script = directory / "dhclient-script"
    dhclient_script.write_text(script)
    dhclient_script.chmod(0o755)
    return wrapper, dhclient_script


def command(variant: Variant, node: Node, files: Files, mode: Mode, stamp: Path) -> list[str]:
    """The full argv: wrapper (+ /usr/bin/time -v for one-shot runs) + client."""
    client = variant.argv(node, files, mode)
    timed = ["/usr/bin/time", "-v", "-o", str(stamp.with_suffix(".time"))]
    inner = [*(timed if mode == "oneshot" else []), *client]
    if variant.family == "privsep":
        return ["bash", str(files.wrapper), str(stamp), "-", *inner]
    return node.command(["bash", str(files.wrapper), str(stamp), str(files.mounts), *inner])
