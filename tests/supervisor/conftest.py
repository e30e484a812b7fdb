"""Fixtures for supervisor tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from supervisor_helpers import RunningLayout


@pytest.fixture
def run_layout() -> Iterator[Callable[..., RunningLayout]]:
    if os.geteuid() != 0:
        pytest.skip("the supervisor's sandboxes need root")
    started: list[RunningLayout] = []

    def start(layout: Path, *overrides: str) -> RunningLayout:
        running = RunningLayout(layout, *overrides)
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()
