"""Shared data for the DHCP tests: the real captures under tests/data/dhcp/.

A test that takes a `capture` argument runs once per captured packet (see
tests/data/dhcp/capture.sh for how they were recorded); `captures` is the whole
list and `capture_named(name)` finds one. Each is a `Capture` (name, payload,
frame, expected JSON).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import EngineLog

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "dhcp"


@dataclass(frozen=True)
class Capture:
    """One packet seen on the wire: its UDP payload, whole frame and expected JSON."""

    name: str  # SERVER-NN-TYPE, e.g. dnsmasq-04-ack
    payload: bytes
    frame: bytes
    expected: dict[str, Any]

    @property
    def server(self) -> str:
        return self.name.split("-")[0]


def load_captures() -> list[Capture]:
    captures = []
    for hex_file in sorted(DATA_DIR.glob("*.hex")):
        name = hex_file.stem
        captures.append(
            Capture(
                name=name,
                payload=bytes.fromhex(hex_file.read_text()),
                frame=bytes.fromhex((DATA_DIR / "frames" / f"{name}.hex").read_text()),
                expected=json.loads((DATA_DIR / f"{name}.json").read_text()),
            )
        )
    return captures


CAPTURES = load_captures()


@pytest.fixture(scope="session")
def captures() -> list[Capture]:
    """Every captured packet, in file-name order."""
    return CAPTURES


def find_capture(name: str) -> Capture:
    return next(c for c in CAPTURES if c.name == name)


@pytest.fixture(scope="session")
def capture_named() -> Any:
    """`capture_named("dnsmasq-04-ack")` -> that Capture."""
    return find_capture


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "capture" in metafunc.fixturenames:
        metafunc.parametrize("capture", CAPTURES, ids=[c.name for c in CAPTURES])


@pytest.fixture
def engine_log() -> Iterator[EngineLog]:
    """dhcp-engine's log records during the test (everything from DEBUG up)."""
    logger = logging.getLogger("privsep.services.dhcp._proc_engine")
    handler = EngineLog()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
