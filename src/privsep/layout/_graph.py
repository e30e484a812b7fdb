"""What spans processes: channel ends that must match, and the start order.

A channel is an edge between exactly two processes under one name: each end
names the other as `peer`, one end `serves` an interface and the other `uses`
the same interface of the same schema. The supervisor makes one socketpair per
channel name, so a name belongs to one pair of processes in the whole layout.

Start order: servers before their users (a topological sort, ties broken by
the order of the file). Cycles are allowed: every socketpair exists before the
first process starts, so a call to a peer that has not started yet waits in
the socket buffer; within a cycle the file order decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from privsep.layout import _yaml
from privsep.layout._model import Channel, Process


@dataclass
class ProcessNodes:
    """Where a process and its channel ends are in the file, for messages."""

    key: yaml.Node
    channels: dict[str, yaml.Node] = field(default_factory=dict)


def check_and_order(
    processes: list[Process], nodes: dict[str, ProcessNodes], problems: _yaml.Problems
) -> list[Process]:
    by_name = {p.name: p for p in processes}
    index = {p.name: i for i, p in enumerate(processes)}
    owners: dict[str, frozenset[str]] = {}  # channel name -> the pair using it
    for process in processes:
        for channel in process.channels:
            where = nodes[process.name].channels[channel.name]
            what = f"process '{process.name}': channel '{channel.name}'"
            peer = by_name.get(channel.peer)
            if peer is None:
                hint = _yaml.suggest(channel.peer, by_name)
                problems.add(where, f"{what}: unknown peer process '{channel.peer}'{hint}")
                continue
            other = _end(peer, channel.name)
            if other is None:
                if channel.name not in nodes[peer.name].channels:  # else: reported there
                    problems.add(
                        where, f"{what}: peer '{peer.name}' declares no channel '{channel.name}'"
                    )
                continue
            if other.peer != process.name:
                problems.add(
                    where,
                    f"{what}: peer '{peer.name}' connects its channel '{channel.name}' "
                    f"to '{other.peer}', not '{process.name}'",
                )
                continue
            pair = frozenset((process.name, peer.name))
            if owners.setdefault(channel.name, pair) != pair:
                a, b = sorted(owners[channel.name])
                problems.add(where, f"{what}: name already used by '{a}' and '{b}'")
                continue
            if index[process.name] < index[peer.name]:
                continue  # the pair is checked once, at its second end in the file
            if channel.role == other.role:
                problems.add(
                    where,
                    f"{what}: both '{peer.name}' and '{process.name}' {channel.role[:-1]} it; "
                    "one end serves, the other uses",
                )
            elif (channel.schema, channel.interface) != (other.schema, other.interface):
                problems.add(
                    where,
                    f"{what}: interfaces differ: '{peer.name}' has "
                    f"{_ref(other)}, '{process.name}' has {_ref(channel)}",
                )
    return start_order(processes)


def _end(process: Process, name: str) -> Channel | None:
    for channel in process.channels:
        if channel.name == name:
            return channel
    return None


def _ref(channel: Channel) -> str:
    return f"{channel.schema.rsplit('/', 1)[-1]}:{channel.interface}"


def start_order(processes: list[Process]) -> list[Process]:
    """Servers before their users; file order among equals and to break cycles."""
    names = {p.name for p in processes}
    needs: dict[str, set[str]] = {p.name: set() for p in processes}
    for process in processes:
        for channel in process.channels:
            if channel.role == "uses" and channel.peer in names:
                needs[process.name].add(channel.peer)
    ordered: list[Process] = []
    started: set[str] = set()
    remaining = list(processes)
    while remaining:
        ready = next((p for p in remaining if needs[p.name] <= started), remaining[0])
        ordered.append(ready)
        started.add(ready.name)
        remaining.remove(ready)
    return ordered
