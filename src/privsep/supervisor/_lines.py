"""Turning a child's output into JSON log lines, without trusting it.

The supervisor is the trusted computing base and a child may be compromised,
so its output is handled as opaque bytes: split on newlines, each line capped
at `MAX_LINE` bytes (the rest of an overlong line is dropped and the line is
marked `truncated`), then either passed through or wrapped. A line passes
through only when it decodes as a JSON *object* (what `privsep._log` writes);
its `process` key is then overwritten with the name the supervisor knows, so a
child can never speak as another process or as the supervisor. Anything else
becomes `{"event": "stderr", "line": ...}`. Nothing else is ever parsed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

MAX_LINE = 8192


class LineSplitter:
    """Bytes in, complete capped lines out (sans-IO)."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._max = max_line
        self._buffer = bytearray()
        self._dropping = False  # inside the tail of an overlong line

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        """The lines `data` completes, as (line without newline, truncated)."""
        lines: list[tuple[bytes, bool]] = []
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            chunk = data[start:] if end < 0 else data[start:end]
            if not self._dropping:
                room = self._max - len(self._buffer)
                self._buffer += chunk[:room]
                if len(chunk) > room:
                    lines.append((bytes(self._buffer), True))
                    self._buffer.clear()
                    self._dropping = True
            if end < 0:
                break
            if self._dropping:
                self._dropping = False
            else:
                lines.append((bytes(self._buffer), False))
                self._buffer.clear()
            start = end + 1
        return lines

    def close(self) -> list[tuple[bytes, bool]]:
        """The unterminated last line, if any."""
        rest = [(bytes(self._buffer), False)] if self._buffer else []
        self._buffer.clear()
        self._dropping = False
        return rest


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def json_object(line: bytes, truncated: bool) -> dict[str, object] | None:
    """The line as a JSON object, or None: not one, cut short, or not strict JSON once
    re-encoded (NaN, Infinity, a lone UTF-16 surrogate: Python accepts them, `jq` and
    other readers of the log do not)."""
    if truncated or not line.startswith(b"{"):
        return None
    try:
        value = json.loads(line, parse_constant=_no_constant)
        if not isinstance(value, dict):
            return None
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")  # 1e999, \ud800
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return None
    return value


def render(
    process: str,
    line: bytes,
    truncated: bool,
    stream: str = "stderr",
    now: Callable[[], float] = time.time,
) -> str:
    """One JSON log line (no newline) for a line of a child's output."""
    value = json_object(line, truncated)
    if value is not None:
        value["process"] = process
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    entry: dict[str, object] = {
        "ts": round(now(), 6),
        "level": "info",
        "process": process,
        "event": stream,
        "line": line.decode("utf-8", "replace"),
    }
    if truncated:
        entry["truncated"] = True
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
