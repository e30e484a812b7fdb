"""Lab names and the registry of who owns which lab, so a sweeper can tell leftovers
of a crashed run from a lab that another live test run is using right now.

A lab's token is `privsep-<owner pid>-<4 hex>`; every resource carries it: network
namespaces `<token>-srv`, `<token>-void`, `<token>-c-<name>`, `<token>-h-<name>` and the
temp dir `<tmp>/<token>` (marked by a `.privsep-lab` file). Before creating anything
the lab writes /run/privsep-lab/<token>.json (owner pid, the owner's start
time, its pid namespace, the temp dir, the namespaces it is about to create), so
a crash at any point leaves a record that names everything. Interfaces never live in
the root namespace (veth pairs are created inside the lab namespaces), so deleting
the namespaces removes every interface.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGISTRY_DIR = Path("/run/privsep-lab")
PREFIX = "privsep-"
MARKER = ".privsep-lab"
# <token> and optionally -<role>; the 4 hex digits keep us apart from other privsep-* names.
TOKEN_RE = re.compile(r"^privsep-(?P<pid>[1-9][0-9]{0,9})-(?P<suffix>[0-9a-f]{4})$")
NETNS_RE = re.compile(
    r"^(?P<token>privsep-[1-9][0-9]{0,9}-[0-9a-f]{4})-(?:srv|void|[ch]-[a-z0-9][a-z0-9_.-]*)$"
)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (defeats PID reuse), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])  # field 22 of the whole line


def pid_namespace() -> str:
    return str(Path("/proc/self/ns/pid").readlink())


@dataclass(slots=True)
class Record:
    """What one lab owns; written before each resource is created."""

    token: str
    owner: int
    owner_start: int | None
    pid_ns: str
    tmpdir: str
    netns: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return REGISTRY_DIR / f"{self.token}.json"

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json()))
        tmp.replace(self.path)

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "owner": self.owner,
            "owner_start": self.owner_start,
            "pid_ns": self.pid_ns,
            "tmpdir": self.tmpdir,
            "netns": self.netns,
        }

    @classmethod
    def load(cls, path: Path) -> Record | None:
        try:
            data = json.loads(path.read_text())
            return cls(
                token=str(data["token"]),
                owner=int(data["owner"]),
                owner_start=data["owner_start"],
                pid_ns=str(data["pid_ns"]),
                tmpdir=str(data["tmpdir"]),
                netns=[str(name) for name in data["netns"]],
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def owner_alive(self) -> bool:
        """True unless we are sure the owner is gone. A record from another pid namespace
        cannot be judged from here, so it counts as alive."""
        if self.pid_ns != pid_namespace():
            return True
        return (
            start_time(self.owner) == self.owner_start
            if self.owner_start
            else pid_alive(self.owner)
        )


def pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def new_record(tmp_root: Path) -> Record:
    """Claim a fresh token: the registry file is created exclusively, so two labs (in any
    process) never share one."""
    REGISTRY_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    pid = os.getpid()
    while True:
        token = f"{PREFIX}{pid}-{secrets.token_hex(2)}"
        path = REGISTRY_DIR / f"{token}.json"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        os.close(fd)
        record = Record(
            token=token,
            owner=pid,
            owner_start=start_time(pid),
            pid_ns=pid_namespace(),
            tmpdir=str(tmp_root / token),
        )
        record.save()
        return record


def all_records() -> list[tuple[Path, Record | None]]:
    with contextlib.suppress(FileNotFoundError):
        return [(path, Record.load(path)) for path in sorted(REGISTRY_DIR.glob("privsep-*.json"))]
    return []
