"""iproute2 and /proc plumbing: run `ip`, parse its JSON, find and kill processes of a netns.

Everything here works on names and inodes only, so the lab and the sweeper share it.
`ip -n NS ...` switches namespaces inside the `ip` process itself: no shell, no
`ip netns exec`, one fork per batch of commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, final

from privsep.testing._errors import LabError

NETNS_DIR = Path("/run/netns")


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    """Run `ip [-n NETNS] ARGS...` and return its stdout; raise LabError on failure."""
    argv = ["ip", *(("-n", netns) if netns else ()), *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {result.stderr.strip() or f'exit {result.returncode}'}")
    return result.stdout


def ip_batch(lines: Sequence[str], *, netns: str | None = None, force: bool = False) -> None:
    """Run several `ip` commands in one process (`ip -batch -`); stops at the first error
    unless `force`."""
    argv = ["ip", *(("-n", netns) if netns else ()), *(("-force",) if force else ()), "-batch", "-"]
    result = subprocess.run(
        argv, input="\n".join(lines) + "\n", capture_output=True, text=True, check=False
    )
    if result.returncode != 0 and not force:
        raise LabError(f"ip batch in {netns or 'root netns'} failed: {result.stderr.strip()}")


def ip_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
    """`ip -json ARGS` parsed; an empty answer is an empty list."""
    text = ip("-json", *args, netns=netns).strip()
    data = json.loads(text) if text else []
    return data if isinstance(data, list) else []


@final
@dataclass(frozen=True, slots=True)
class AddressInfo:
    """One IPv4 address on an interface, as the kernel reports it."""

    interface: IPv4Interface
    valid_lft: int | None  # seconds left; None for "forever"
    preferred_lft: int | None
    broadcast: IPv4Address | None
    dynamic: bool  # the address carries a finite lifetime


@final
@dataclass(frozen=True, slots=True)
class Route:
    """One IPv4 route of the main table, as `ip -j route` reports it."""

    destination: IPv4Network
    gateway: IPv4Address | None
    device: str | None
    metric: int | None
    protocol: str | None
    scope: str | None
    prefsrc: IPv4Address | None

    @property
    def is_default(self) -> bool:
        return self.destination.prefixlen == 0


_FOREVER = 0xFFFFFFFF


def _lifetime(value: object) -> int | None:
    return None if not isinstance(value, int) or value == _FOREVER else value


def parse_addresses(data: Iterable[dict[str, Any]]) -> tuple[AddressInfo, ...]:
    """IPv4 addresses from `ip -j addr show` output."""
    found = []
    for link in data:
        for entry in link.get("addr_info", []):
            if entry.get("family") != "inet":
                continue
            valid = _lifetime(entry.get("valid_life_time"))
            found.append(
                AddressInfo(
                    interface=IPv4Interface(f"{entry['local']}/{entry['prefixlen']}"),
                    valid_lft=valid,
                    preferred_lft=_lifetime(entry.get("preferred_life_time")),
                    broadcast=IPv4Address(entry["broadcast"]) if "broadcast" in entry else None,
                    dynamic=valid is not None,
                )
            )
    return tuple(found)


def parse_routes(data: Iterable[dict[str, Any]]) -> tuple[Route, ...]:
    """IPv4 unicast routes from `ip -j -4 route show` output."""
    found = []
    for entry in data:
        if entry.get("type", "unicast") != "unicast":
            continue
        dst = entry.get("dst", "default")
        gateway = entry.get("gateway")
        prefsrc = entry.get("prefsrc")
        found.append(
            Route(
                destination=IPv4Network("0.0.0.0/0" if dst == "default" else dst),
                gateway=IPv4Address(gateway) if gateway else None,
                device=entry.get("dev"),
                metric=entry.get("metric"),
                protocol=entry.get("protocol"),
                scope=entry.get("scope"),
                prefsrc=IPv4Address(prefsrc) if prefsrc else None,
            )
        )
    return tuple(found)


def list_netns() -> list[str]:
    """Names of the named network namespaces (entries of /run/netns)."""
    try:
        return sorted(entry.name for entry in os.scandir(NETNS_DIR))
    except FileNotFoundError:
        return []


def netns_id(name: str) -> tuple[int, int] | None:
    """(device, inode) identifying the namespace mounted at /run/netns/NAME, or None."""
    try:
        st = (NETNS_DIR / name).stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def pids_in_netns(ids: Iterable[tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """Every process whose network namespace is one of `ids` (pid -> namespace id)."""
    wanted = set(ids)
    found: dict[int, tuple[int, int]] = {}
    if not wanted:
        return found
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            st = Path(f"/proc/{entry.name}/ns/net").stat()
        except OSError:
            continue  # exited, or a kernel thread
        key = (st.st_dev, st.st_ino)
        if key in wanted:
            found[int(entry.name)] = key
    return found


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def kill_netns_processes(
    ids: Iterable[tuple[int, int]], *, timeout: float = 5.0
) -> list[tuple[int, str]]:
    """SIGKILL every process in the namespaces `ids` until none is left; return (pid, name)
    of those killed. Zombies no longer belong to a namespace: the parent reaps them."""
    ids = set(ids)
    killed: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in pids_in_netns(ids) if not _is_zombie(pid)]
        if not alive:
            return sorted(killed.items())
        for pid in alive:
            killed.setdefault(pid, process_name(pid))
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise LabError(f"processes {alive} survive SIGKILL in a lab namespace")
        time.sleep(0.002)  # SIGKILL is asynchronous: poll until the kernel has torn them down


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # gone
    return stat[stat.rindex(")") + 2] in "ZX"


def delete_netns(names: Iterable[str]) -> list[str]:
    """`ip netns del` each name that exists; return the names deleted."""
    present = [name for name in names if (NETNS_DIR / name).exists()]
    if present:
        ip_batch([f"netns del {name}" for name in present], force=True)
    return [name for name in present if not (NETNS_DIR / name).exists()]
