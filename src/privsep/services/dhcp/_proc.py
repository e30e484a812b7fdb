"""Entry points of the DHCP client's processes (named by layout.yaml).

Each process imports only its own module, in `prepare` (before the locks). No
process of the client speaks TLS, so `ssl` is blocked first: asyncio then does
not load libssl/libcrypto, which saves ~5 ms and ~1.5 MiB of memory per process.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]  # asyncio: "no ssl"

PROCESS_MODULES = {
    "dhcp-network": "privsep.services.dhcp._proc_network",
    "dhcp-engine": "privsep.services.dhcp._proc_engine",
    "dhcp-actuator": "privsep.services.dhcp._proc_actuator",
    "dhcp-hook": "privsep.services.dhcp._proc_hook",
    "dhcp-resolv": "privsep.services.dhcp._proc_resolv",
}


def preload(name: str) -> None:
    """For a supervisor that forks its children: import the process's module up front."""
    importlib.import_module(PROCESS_MODULES[name])


def prepare(ctx: Any) -> None:
    """Import the process's module before the locks go on."""
    importlib.import_module(PROCESS_MODULES[ctx.name])


async def main(ctx: Any) -> None:
    module = importlib.import_module(PROCESS_MODULES[ctx.name])
    await module.main(ctx)
