"""Structured logging: one JSON object per line, always tagged with the process name.

Every privsep process logs through `get_logger()`; the supervisor forwards each
sandboxed process's stderr line by line, so a log line must never span lines.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any, TextIO

_PROCESS_NAME_ENV = "PRIVSEP_PROCESS"


class JsonFormatter(logging.Formatter):
    """Formats a record as a single JSON line: ts, level, process, event, extra fields."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "process": self.process,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def process_name() -> str:
    """The name this process logs under (set by the supervisor, else 'privsep')."""
    return os.environ.get(_PROCESS_NAME_ENV, "privsep")


def configure(
    process: str | None = None, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Send privsep's logs to `stream` (stderr by default) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(process or process_name()))
    root = logging.getLogger("privsep")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def get_logger(name: str) -> logging.Logger:
    """A logger under the `privsep` hierarchy."""
    return logging.getLogger(name if name.startswith("privsep") else f"privsep.{name}")


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with structured `fields` (they become keys of the JSON line)."""
    logger.log(level, event, extra={"fields": fields})
