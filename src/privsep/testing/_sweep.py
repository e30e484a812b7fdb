"""Remove what crashed lab runs left behind, never touching a lab whose owner still runs.

Sources of truth, in order: registry records (/run/privsep-lab/*.json) whose owner is
gone (pid dead, or reused: the start time differs); then, for leftovers without a record,
namespaces and temp dirs named `privsep-<pid>-<hex>...` whose pid is dead and that no
live record claims. Labs never put interfaces in the host namespace, so deleting the
namespaces removes every veth.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import final

from privsep._log import get_logger, log_event
from privsep.testing._errors import LabError
from privsep.testing._ip import delete_netns, kill_netns_processes, list_netns, netns_id
from privsep.testing._registry import (
    MARKER,
    NETNS_RE,
    REGISTRY_DIR,
    TOKEN_RE,
    all_records,
    pid_alive,
)

_logger = get_logger(__name__)


@final
@dataclass(frozen=True, slots=True)
class SweepResult:
    """What `sweep()` removed."""

    labs: tuple[str, ...]  # tokens of the dead labs
    namespaces: tuple[str, ...]
    processes: tuple[tuple[int, str], ...]  # (pid, command name) killed
    directories: tuple[Path, ...]

    def __bool__(self) -> bool:
        return bool(self.labs or self.namespaces or self.processes or self.directories)


def _token_of(name: str) -> str | None:
    match = NETNS_RE.match(name)
    return match["token"] if match else None


def _owner_of(token: str) -> int:
    match = TOKEN_RE.match(token)
    assert match is not None
    return int(match["pid"])


def sweep(tmp_root: Path | None = None) -> SweepResult:
    """Remove namespaces, processes, temp dirs and records of labs whose owner is dead.

    Sweeps of concurrent test runs take turns (a lock file), so when `sweep()` returns,
    every dead lab is gone, whichever run removed it.
    """
    with sweep_lock():
        return sweep_locked(tmp_root or Path(tempfile.gettempdir()))


@contextlib.contextmanager
def sweep_lock() -> Iterator[None]:
    """Exclusive among sweepers of every process on this machine."""
    REGISTRY_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    with (REGISTRY_DIR / ".sweep.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def sweep_locked(tmp_root: Path) -> SweepResult:
    """`sweep()` for a caller that holds `sweep_lock()`."""
    live_tokens: set[str] = set()
    dead_tokens: set[str] = set()
    doomed_netns: set[str] = set()
    doomed_dirs: set[Path] = set()
    records = []
    for path, record in all_records():
        if record is None:
            # Unreadable: the owner died between claiming the token and writing it.
            match = TOKEN_RE.match(path.stem)
            if match and not pid_alive(int(match["pid"])):
                dead_tokens.add(path.stem)
                records.append(path)
            continue
        if record.owner_alive():
            live_tokens.add(record.token)
            continue
        dead_tokens.add(record.token)
        doomed_netns.update(record.netns)
        doomed_dirs.add(Path(record.tmpdir))
        records.append(path)
    # Leftovers without a record (e.g. the record's removal raced a crash).
    for name in list_netns():
        token = _token_of(name)
        if token and token not in live_tokens and not pid_alive(_owner_of(token)):
            dead_tokens.add(token)
            doomed_netns.add(name)
    for entry in tmp_root.glob("privsep-*"):
        if (
            TOKEN_RE.match(entry.name)
            and entry.name not in live_tokens
            and (entry / MARKER).exists()
            and not pid_alive(_owner_of(entry.name))
        ):
            dead_tokens.add(entry.name)
            doomed_dirs.add(entry)

    ids = [i for i in (netns_id(name) for name in doomed_netns) if i is not None]
    try:
        killed = kill_netns_processes(ids) if ids else []
    except LabError as exc:  # a process stuck in D state: delete the namespaces anyway
        log_event(_logger, "lab_sweep_kill_failed", level=logging.WARNING, error=str(exc))
        killed = []
    deleted = delete_netns(sorted(doomed_netns))
    removed_dirs = []
    for directory in sorted(doomed_dirs):
        if directory.is_dir() and (directory / MARKER).exists():
            shutil.rmtree(directory, ignore_errors=True)
            removed_dirs.append(directory)
    for path in records:
        path.unlink(missing_ok=True)
    for path in REGISTRY_DIR.glob("privsep-*.tmp"):  # a crash mid-save
        match = TOKEN_RE.match(path.stem)
        if match and not pid_alive(int(match["pid"])):
            path.unlink(missing_ok=True)
    # `privsep dhcp`'s interface locks left by a client that was killed (tests kill some).
    from privsep._cli._dhcp_checks import sweep_stale_locks  # noqa: PLC0415

    removed_dirs += [d for d in sweep_stale_locks() if not d.exists()]
    result = SweepResult(
        labs=tuple(sorted(dead_tokens)),
        namespaces=tuple(deleted),
        processes=tuple(killed),
        directories=tuple(removed_dirs),
    )
    if result:
        log_event(
            _logger,
            "lab_swept",
            labs=list(result.labs),
            namespaces=len(deleted),
            processes=len(killed),
            directories=len(removed_dirs),
        )
    return result
