"""Restart decisions and restart groups, as pure functions of the layout and exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from privsep.layout._model import Process, Restart

Decision = Literal["done", "restart", "give-up"]


def decide(restart: Restart, returncode: int, restarts_so_far: int) -> Decision:
    """What to do after a process exited with `returncode` (negative: killed by a signal).

    `done`: it ended and stays ended (a normal exit the policy does not restart).
    `restart`: start it again after `backoff(...)`.
    `give-up`: it failed for good: the policy forbids a restart after a failure,
    or `max_restarts` restarts were already spent.
    """
    failed = returncode != 0
    wanted = restart.policy == "always" or (restart.policy == "on-failure" and failed)
    if not wanted:
        return "give-up" if failed else "done"
    return "restart" if restarts_so_far < restart.max_restarts else "give-up"


def backoff(restart: Restart, attempt: int) -> float:
    """Delay before restart number `attempt` (1-based): doubling from the initial, capped."""
    return float(min(restart.backoff_initial * 2.0 ** (attempt - 1), restart.backoff_max))


def restart_groups(processes: Sequence[Process]) -> list[tuple[str, ...]]:
    """The processes connected by channels, each group in layout order.

    A channel's two ends live and die together (see the supervisor's docs), so
    restarting one process restarts its whole group. Groups come in the order
    of their first member in the layout.
    """
    parent = {p.name: p.name for p in processes}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for process in processes:
        for channel in process.channels:
            if channel.peer in parent:
                parent[root(channel.peer)] = root(process.name)
    groups: dict[str, list[str]] = {}
    for process in processes:
        groups.setdefault(root(process.name), []).append(process.name)
    return [tuple(members) for members in groups.values()]
