"""Replace a file atomically: a reader sees the old content or the new, never a mix.

Shared by `_resolvconf` (in `dhcp-resolv`) and `_statedir` (in `dhcp-actuator`):
a temporary file beside the target, fsync, rename over it, fsync of the directory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def replace_atomically(
    path: Path, data: bytes, *, mode: int | None = None, suffix: str = ""
) -> None:
    """Make `path` hold `data`; the temp file is `.NAME.XXXXXXXXSUFFIX`, 0600 unless `mode`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise
    sync_dir(path.parent)


def sync_dir(directory: Path) -> None:
    """fsync `directory`, so a rename or unlink in it survives a crash."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
