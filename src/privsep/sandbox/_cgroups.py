"""Memory and pids limits through cgroups, where a controller is writable.

cgroup v2 (unified) is used when it has the controller; otherwise the v1
`memory` and `pids` hierarchies (hybrid hosts). Each sandboxed process gets
its own child cgroup beside the supervisor's (`privsep-NAME-PID-N`), which the
spawner creates, the exec helper joins before it unshares its cgroup
namespace, and the spawner removes once it has seen the process exit (or a
later spawner sweeps up, when the one that made it died first).
"""

# ruff: noqa: PTH102, PTH106, PTH110, PTH112, PTH208 - os paths: pathlib would cost start-up time of every sandboxed process

from __future__ import annotations

import os

_ROOT = "/sys/fs/cgroup"


def _own_path(controller: str) -> str | None:
    """This process's cgroup path in the hierarchy of `controller` ('' = v2)."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path
    return None


def _writable(directory: str) -> bool:
    return os.path.isdir(directory) and os.access(directory, os.W_OK)


def locate(controller: str) -> tuple[str, str] | None:
    """(directory to create cgroups under, limit file) for `memory` or `pids`, or None."""
    files = {"memory": ("memory.max", "memory.limit_in_bytes"), "pids": ("pids.max", "pids.max")}
    v2_file, v1_file = files[controller]
    for v2_root in (_ROOT, f"{_ROOT}/unified"):
        try:
            with open(f"{v2_root}/cgroup.controllers") as f:
                available = f.read().split()
        except OSError:
            continue
        own = _own_path("")
        if controller in available and own is not None:
            parent = os.path.normpath(f"{v2_root}/{own}")
            # v2's no-internal-processes rule: our own cgroup must delegate the controller.
            try:
                with open(f"{parent}/cgroup.subtree_control") as f:
                    delegated = controller in f.read().split()
            except OSError:
                delegated = False
            if delegated and _writable(parent):
                return parent, v2_file
    own = _own_path(controller)
    if own is not None:
        parent = os.path.normpath(f"{_ROOT}/{controller}/{own}")
        if _writable(parent):
            return parent, v1_file
    return None


def sweep(parent: str) -> None:
    """Remove empty cgroups left by spawners that died (`privsep-NAME-PID-N`, PID gone)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        ours = name.startswith("privsep-") and len(parts) >= 4 and parts[-2].isdigit()
        if ours and not os.path.exists(f"/proc/{parts[-2]}"):
            remove([f"{parent}/{name}"])  # fails harmlessly while processes remain


def create(tag: str, limits: list[tuple[str, str, str]]) -> list[str]:
    """Create one child cgroup `privsep-TAG` per (parent, file, value); return them."""
    made: list[str] = []
    try:
        for parent, limit_file, value in limits:
            sweep(parent)
            directory = f"{parent}/privsep-{tag}"
            os.mkdir(directory)
            made.append(directory)
            with open(f"{directory}/{limit_file}", "w") as f:
                f.write(value)
    except OSError:
        remove(made)
        raise
    return made


def join(directories: list[str]) -> None:
    for directory in directories:
        with open(f"{directory}/cgroup.procs", "w") as f:
            f.write("0")


def remove(directories: list[str]) -> None:
    for directory in reversed(directories):
        try:  # noqa: SIM105 - contextlib is an import the exec helper does without
            os.rmdir(directory)
        except OSError:
            pass
