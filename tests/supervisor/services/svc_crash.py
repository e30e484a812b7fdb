"""A component that fails at once: exercises restart budgets."""

from __future__ import annotations

from typing import Any


def main(ctx: Any) -> None:
    raise RuntimeError("crashing on purpose")
