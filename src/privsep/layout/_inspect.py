"""What each process of a layout ends up holding, as `privsep inspect` shows it.

One record per process with exactly the keys of the CLI contract: `name`,
`uid` (an int, or the string "dynamic" when the supervisor picks an unused
unprivileged id at start), `capabilities`, `namespaces` (the new ones),
`seccomp` (`{"default": "ENOSYS", "allowed": N}`, null under `no-seccomp`),
`landlock` (the effective rules, null under `no-landlock`), `fds` (the names
the process receives: resources, then channels) and `exposure` (null until a
scorer exists).
"""

from __future__ import annotations

from typing import Any

from privsep.layout import _names
from privsep.layout._model import LANDLOCK_RIGHTS, Layout, Process

_ALWAYS_NEW = ("mount", "pid", "ipc", "uts", "cgroup")


def namespaces(process: Process) -> list[str]:
    """The namespaces the process gets new (the mount, pid, ipc, uts and cgroup ones always)."""
    new = list(_ALWAYS_NEW)
    if process.namespaces.net.mode == "none":
        new.append("net")
    if process.namespaces.user and "no-user-namespace" not in process.degrade:
        new.append("user")
    return new


def landlock_rules(process: Process) -> list[dict[str, Any]] | None:
    """The launcher's effective Landlock rules, one per path; None under `no-landlock`.

    The launcher may add several rules for one path (a read-only default and a
    layout grant); Landlock allows their union, so that is what is shown, in the
    order paths first appear and rights in `LANDLOCK_RIGHTS` order.
    """
    if "no-landlock" in process.degrade:
        return None
    merged: dict[str, set[str]] = {}
    for path, access in _names.landlock_rules(process):
        merged.setdefault(path, set()).update(access)
    return [
        {"path": path, "access": [right for right in LANDLOCK_RIGHTS if right in access]}
        for path, access in merged.items()
    ]


def seccomp(process: Process) -> dict[str, Any] | None:
    if "no-seccomp" in process.degrade:
        return None
    return {"default": "ENOSYS", "allowed": len(_names.allowlist(process.seccomp))}


def record(process: Process) -> dict[str, Any]:
    return {
        "name": process.name,
        "uid": "dynamic" if process.user.dynamic else process.user.uid,
        "capabilities": list(process.capabilities),
        "namespaces": namespaces(process),
        "seccomp": seccomp(process),
        "landlock": landlock_rules(process),
        "fds": [fd.name for fd in process.fds] + [ch.name for ch in process.channels],
        "exposure": None,
    }


def inspect_layout(layout: Layout) -> dict[str, Any]:
    """`{"service", "parameters", "processes": [record, ...]}` in start order."""
    return {
        "service": layout.service,
        "parameters": dict(layout.values),
        "processes": [record(process) for process in layout.processes],
    }


def table(report: dict[str, Any], layout: Layout) -> str:
    """The human form: one aligned row per process (a joined netns shown as `net:NAME`)."""
    net = {
        p.name: f",net:{p.namespaces.net.netns or 'host'}"
        for p in layout.processes
        if p.namespaces.net.mode != "none"
    }
    header = ("PROCESS", "UID", "CAPS", "NAMESPACES", "SECCOMP", "LANDLOCK", "FDS", "EXPOSURE")
    rows = [header]
    for proc in report["processes"]:
        sec = proc["seccomp"]
        rules = proc["landlock"]
        rows.append(
            (
                proc["name"],
                str(proc["uid"]),
                ",".join(c.removeprefix("CAP_").lower() for c in proc["capabilities"]) or "-",
                ",".join(proc["namespaces"]) + net.get(proc["name"], ""),
                f"allow:{sec['allowed']}" if sec else "off",
                f"{len(rules)} rules" if rules is not None else "off",
                ",".join(proc["fds"]) or "-",
                "-" if proc["exposure"] is None else f"{proc['exposure']:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)
