"""Entry points for tests/sandbox/test_sandbox_spawn.py (layout: components.yaml)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

_PREPARED: dict[str, str] = {}


def _nnp() -> str:
    with open("/proc/self/status") as f:
        return next(line.split()[1] for line in f if line.startswith("NoNewPrivs:"))


def sleeper(ctx: Any) -> None:
    print("ready", flush=True)
    time.sleep(60)


def failing(ctx: Any) -> None:
    raise ValueError("component broke on purpose")


def exits(ctx: Any) -> None:
    sys.exit(int(ctx.params["code"]))


def prepare(ctx: Any) -> None:
    _PREPARED["nnp"] = _nnp()


def prepared(ctx: Any) -> None:
    print(f"prepare saw NoNewPrivs {_PREPARED['nnp']}, main sees {_nnp()}", flush=True)


async def async_main(ctx: Any) -> None:
    print(f"async main sees NoNewPrivs {_nnp()} fds {sorted(ctx.fds)}", flush=True)


def quits(ctx: Any) -> None:
    os.close(ctx.fd("link"))
