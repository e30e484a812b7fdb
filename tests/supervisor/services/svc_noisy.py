"""A component that writes every kind of line a supervisor must survive, then exits 0."""

from __future__ import annotations

import json
import sys
from typing import Any


def main(ctx: Any) -> None:
    out = sys.stderr.buffer
    out.write(b"plain text line\n")
    # Claims to be someone else: the supervisor must overwrite `process`.
    out.write(json.dumps({"event": "spoof", "process": "supervisor", "n": 1}).encode() + b"\n")
    out.write(b"[1, 2, 3]\n")  # JSON, but not an object: wrapped
    out.write(b"{not json\n")
    out.write(b"\xff\xfe bad utf-8\n")
    out.write(b"[" * 100000 + b"\n")  # deep nesting, overlong: capped, never parsed
    out.write(b"x" * 20000 + b"\n")
    out.write(b"no newline at exit")
    out.flush()
    sys.stdout.write("to stdout\n")
    sys.stdout.flush()
