"""The DHCPv4 client's states and its transition table, as data (h11 style).

Theory of operation
-------------------
The client is a finite state machine over the RFC 2131 §4.4 states, plus three
of our own: STOPPED (before `start()` and after `stop()`/`release()`), PROBING
(RFC 5227 address conflict detection between the DHCPACK and BOUND) and
DECLINED (the ≥ 10 s wait after a DHCPDECLINE, RFC 2131 §3.1.5).

Every change of state goes through `TRANSITIONS[state][trigger]`. A trigger
names *what happened* (an accepted reply, a timer, a caller request), never
how the engine reacts: the reaction (frames to send, timers to arm, events to
emit) lives in `_engine.py`, next to the trigger that causes it. A missing key
means the trigger is impossible in that state:
- for network input (OFFER, ACK, NAK) the engine checks the table first and
  drops the message with a `PacketDropped` event;
- for timers and caller requests a missing key is a bug in the engine and
  raises `EngineStateError` (the engine never arms a timer its state cannot
  take, and the public entry points check the state before asking).

INIT and INIT_REBOOT are passed through at once when the client starts: the
first DHCPDISCOVER (or the INIT-REBOOT DHCPREQUEST) leaves with the RESTART /
REBOOT trigger. INIT is also where the client waits (`_restart_at`) after a
DHCPNAK, after `discover_tries` failed (udhcpc's `-A` pause), after a lease
expired and during RFC 8925's V6ONLY_WAIT. `renew_now()` in SELECTING or
REQUESTING goes back through INIT (RENEW_NOW, then RESTART) to a new
exchange; in BOUND it is the T1 trigger, fired early.

The diagram in docs/dhcp-engine.md is generated from this table:
`python -m privsep.services.dhcp._state` prints it.
"""

from __future__ import annotations

import enum
from typing import Final

from privsep._errors import PrivsepError


class State(enum.Enum):
    STOPPED = "STOPPED"
    INIT = "INIT"
    SELECTING = "SELECTING"
    REQUESTING = "REQUESTING"
    PROBING = "PROBING"
    DECLINED = "DECLINED"
    BOUND = "BOUND"
    RENEWING = "RENEWING"
    REBINDING = "REBINDING"
    INIT_REBOOT = "INIT_REBOOT"
    REBOOTING = "REBOOTING"


class Trigger(enum.Enum):
    START = "start"  # start() without a usable saved lease
    START_REBOOT = "start with saved lease"  # start() with an unexpired saved lease
    RESTART = "send DISCOVER"  # (re)start address acquisition
    REBOOT = "send REQUEST"  # INIT-REBOOT: request the saved address
    OFFER = "OFFER"
    ACK = "ACK"  # accepted DHCPACK, address usable at once
    ACK_PROBE = "ACK, probe first"  # accepted DHCPACK, RFC 5227 probing on
    NAK = "NAK"
    TRIES_EXHAUSTED = "no answer"  # retransmission budget spent
    REBOOT_TIMEOUT_KEEP = "no answer, lease valid"  # INIT-REBOOT silence, keep the lease
    IPV6_ONLY = "option 108"  # RFC 8925: stop DHCPv4 for V6ONLY_WAIT
    PROBE_OK = "probes unanswered"
    CONFLICT = "address conflict"
    BACKOFF_DONE = "wait over"
    T1 = "T1"
    T2 = "T2"
    EXPIRY = "lease expired"
    RELEASE = "release()"
    RENEW_NOW = "renew_now()"  # the caller restarts an unfinished acquisition (SIGUSR1)
    STOP = "stop()"


S = State
T = Trigger

# Triggers every running state accepts: the caller may always stop.
_ALWAYS: Final = {T.STOP: S.STOPPED}
# States that hold a lease in use: the caller may release it or report a conflict.
_HOLDING: Final = {T.RELEASE: S.STOPPED, T.CONFLICT: S.DECLINED, **_ALWAYS}

TRANSITIONS: Final[dict[State, dict[Trigger, State]]] = {
    S.STOPPED: {T.START: S.INIT, T.START_REBOOT: S.INIT_REBOOT},
    S.INIT: {T.RESTART: S.SELECTING, **_ALWAYS},
    S.SELECTING: {
        T.OFFER: S.REQUESTING,
        T.ACK: S.BOUND,  # rapid commit (RFC 4039)
        T.ACK_PROBE: S.PROBING,  # rapid commit, then RFC 5227
        T.TRIES_EXHAUSTED: S.INIT,
        T.IPV6_ONLY: S.INIT,
        T.RENEW_NOW: S.INIT,
        **_ALWAYS,
    },
    S.REQUESTING: {
        T.ACK: S.BOUND,
        T.ACK_PROBE: S.PROBING,
        T.NAK: S.INIT,
        T.TRIES_EXHAUSTED: S.INIT,
        T.RENEW_NOW: S.INIT,
        **_ALWAYS,
    },
    S.PROBING: {T.PROBE_OK: S.BOUND, T.CONFLICT: S.DECLINED, **_ALWAYS},
    S.DECLINED: {T.BACKOFF_DONE: S.INIT, **_ALWAYS},
    S.BOUND: {T.T1: S.RENEWING, T.T2: S.REBINDING, T.EXPIRY: S.INIT, **_HOLDING},
    S.RENEWING: {
        T.ACK: S.BOUND,
        T.NAK: S.INIT,
        T.T2: S.REBINDING,
        T.EXPIRY: S.INIT,
        **_HOLDING,
    },
    S.REBINDING: {T.ACK: S.BOUND, T.NAK: S.INIT, T.EXPIRY: S.INIT, **_HOLDING},
    S.INIT_REBOOT: {T.REBOOT: S.REBOOTING, **_ALWAYS},
    S.REBOOTING: {
        T.ACK: S.BOUND,
        T.ACK_PROBE: S.PROBING,
        T.NAK: S.INIT,
        T.TRIES_EXHAUSTED: S.INIT,
        T.REBOOT_TIMEOUT_KEEP: S.BOUND,
        T.IPV6_ONLY: S.INIT,
        **_ALWAYS,
    },
}


class EngineStateError(PrivsepError, RuntimeError):
    """A trigger the table does not allow in the current state: a bug or caller misuse."""

    def __init__(self, state: State, trigger: Trigger) -> None:
        super().__init__(f"{trigger.name} is not possible in state {state.name}")
        self.state = state
        self.trigger = trigger


def next_state(state: State, trigger: Trigger) -> State:
    """The state `trigger` leads to from `state`; raises `EngineStateError` if none."""
    try:
        return TRANSITIONS[state][trigger]
    except KeyError:
        raise EngineStateError(state, trigger) from None


def mermaid() -> str:
    """The transition table as a Mermaid state diagram (what docs/dhcp-engine.md embeds)."""
    lines = ["stateDiagram-v2", "    [*] --> STOPPED"]
    for state, row in TRANSITIONS.items():
        for trigger, target in row.items():
            if trigger is T.STOP and state is not S.INIT:
                continue  # every state stops; drawn once, from INIT, to keep the diagram legible
            lines.append(f"    {state.name} --> {target.name}: {trigger.value}")
    lines.append("    note right of STOPPED: stop() leads here from every state")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - a one-line CLI, its output is tested via mermaid()
    import sys

    sys.stdout.write(mermaid())
