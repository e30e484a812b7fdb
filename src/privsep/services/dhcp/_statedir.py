"""The actuator's state directory: small named records, each replaced atomically.

Two records live here: `lease` (the engine's serialised lease, opaque to the
actuator, handed back by `loadState` so the engine, its only parser, can resume
after a restart) and `applied` (the actuator's own record of what it put on the
interface, so that after a restart it knows what it owns without asking the
engine).

File format: `MAGIC`, the payload length (8 bytes, big-endian), the payload's
SHA-256, the payload. A file that is truncated, too long, has a bad digest or is
not a regular file counts as corrupt: `load` renames it to `NAME.corrupt` (kept
for inspection, replacing an older one) and returns None, as if there were no
state. Writes go to a temporary file in the directory, fsync, rename, fsync of
the directory; files are 0600, the directory 0700.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import stat
import struct
from pathlib import Path
from typing import Any, Final, final

from privsep._errors import PrivsepError
from privsep._log import get_logger, log_event
from privsep.services.dhcp._atomicfile import replace_atomically, sync_dir

MAGIC: Final = b"privsep-state 1\n"
_HEADER: Final = struct.Struct(">Q32s")
MAX_RECORD: Final = 64 * 1024
_NAME_RE: Final = re.compile(r"[a-z][a-z0-9-]{0,31}", re.ASCII)

_logger = get_logger(__name__)


def _builtin_sha256() -> Any:
    """CPython's own SHA-256 (`_sha2` from 3.12, `_sha256` before): `hashlib` would load
    OpenSSL's libcrypto into every client process (~6 ms at start, ~1.5 MiB), for one
    digest of a few hundred bytes. hashlib is the fallback on other Pythons."""
    for name in ("_sha2", "_sha256", "hashlib"):
        with contextlib.suppress(ImportError):
            return importlib.import_module(name).sha256
    raise ImportError("no SHA-256 implementation")


_sha256: Final = _builtin_sha256()


class StateDirError(PrivsepError):
    """The state directory cannot be used (not a directory, wrong owner, bad name, too big)."""


def encode_record(payload: bytes) -> bytes:
    return MAGIC + _HEADER.pack(len(payload), _sha256(payload).digest()) + payload


def decode_record(data: bytes) -> bytes | None:
    """The payload of a record file, or None if it is not exactly one valid record."""
    head = len(MAGIC) + _HEADER.size
    if len(data) < head or not data.startswith(MAGIC):
        return None
    length, digest = _HEADER.unpack_from(data, len(MAGIC))
    payload = data[head:]
    if length != len(payload) or _sha256(payload).digest() != digest:
        return None
    return payload


@final
class StateDir:
    """Named records in one directory owned by this process."""

    __slots__ = ("path",)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.lstat(self.path)
        except OSError as exc:
            raise StateDirError(f"state dir {self.path}: {exc.strerror}") from exc
        if not stat.S_ISDIR(info.st_mode):
            raise StateDirError(f"state dir {self.path} is not a directory")
        if info.st_uid != os.geteuid():
            raise StateDirError(f"state dir {self.path} is not owned by uid {os.geteuid()}")
        if stat.S_IMODE(info.st_mode) != 0o700:
            self.path.chmod(0o700)
        for leftover in self.path.glob(".*.tmp*"):  # temp files of a write that died
            with contextlib.suppress(OSError):
                leftover.unlink()

    def _file(self, name: str) -> Path:
        if _NAME_RE.fullmatch(name) is None:
            raise StateDirError(f"bad record name {name!r}")
        return self.path / name

    def save(self, name: str, payload: bytes) -> None:
        """Replace record `name` with `payload` atomically."""
        if len(payload) > MAX_RECORD:
            raise StateDirError(f"record {name} over {MAX_RECORD} bytes")
        replace_atomically(self._file(name), encode_record(payload), suffix=".tmp")

    def load(self, name: str) -> bytes | None:
        """Record `name`'s payload; None if absent or corrupt (a corrupt file is set aside)."""
        target = self._file(name)
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError:  # ELOOP: a symlink; anything else: unusable all the same
            payload = None
        else:
            with os.fdopen(fd, "rb") as f:
                regular = stat.S_ISREG(os.fstat(f.fileno()).st_mode)
                data = f.read(len(MAGIC) + _HEADER.size + MAX_RECORD + 1) if regular else b""
            payload = decode_record(data) if regular else None
        if payload is None:
            log_event(_logger, "state-record-corrupt", name=name)
            with contextlib.suppress(OSError):
                target.replace(target.with_name(f"{name}.corrupt"))
            sync_dir(self.path)
        return payload

    def remove(self, name: str) -> None:
        """Delete record `name` if it exists."""
        with contextlib.suppress(FileNotFoundError):
            self._file(name).unlink()
            sync_dir(self.path)
