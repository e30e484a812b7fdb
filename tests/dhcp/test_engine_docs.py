"""docs/dhcp-engine.md shows the state diagram generated from the transition table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from privsep.services.dhcp._state import TRANSITIONS, State, Trigger, mermaid

DOC = Path(__file__).resolve().parents[2] / "docs" / "dhcp-engine.md"


def test_doc_diagram_is_the_generated_one() -> None:
    blocks = re.findall(r"```mermaid\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert blocks == [mermaid()], "regenerate: python -m privsep.services.dhcp._state"


def test_state_module_prints_the_diagram() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "privsep.services.dhcp._state"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout == mermaid()


def test_diagram_has_every_transition_but_repeated_stops() -> None:
    lines = mermaid().splitlines()
    for state, row in TRANSITIONS.items():
        for trigger, target in row.items():
            edge = f"    {state.name} --> {target.name}: {trigger.value}"
            assert (edge in lines) == (trigger is not Trigger.STOP or state is State.INIT)


def test_every_state_is_reachable_and_can_stop() -> None:
    reachable = {State.STOPPED}
    frontier = [State.STOPPED]
    while frontier:
        for target in TRANSITIONS[frontier.pop()].values():
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(State)
    for state, row in TRANSITIONS.items():
        if state is not State.STOPPED:
            assert row.get(Trigger.STOP) is State.STOPPED, state
