"""Timing rules of RFC 2131 and RFC 5227, as pure functions of their inputs.

Randomness comes in through the `Rng` protocol (`random.Random` satisfies it);
nothing here reads a clock.
"""

from __future__ import annotations

from typing import Final, Protocol

INFINITE_LEASE: Final = 0xFFFFFFFF

# RFC 2131 §4.1: 4 s, doubling, capped at 64 s, each randomised by ±1 s.
BACKOFF_FIRST: Final = 4.0
BACKOFF_MAX: Final = 64.0
BACKOFF_JITTER: Final = 1.0

# RFC 5227 §1.1 constants (seconds / counts).
PROBE_WAIT: Final = 1.0
PROBE_NUM: Final = 3
PROBE_MIN: Final = 1.0
PROBE_MAX: Final = 2.0
ANNOUNCE_WAIT: Final = 2.0
ANNOUNCE_NUM: Final = 2
ANNOUNCE_INTERVAL: Final = 2.0
MAX_CONFLICTS: Final = 10
RATE_LIMIT_INTERVAL: Final = 60.0

# RFC 8925 §3.4: MIN_V6ONLY_WAIT.
MIN_V6ONLY_WAIT: Final = 300.0


class Rng(Protocol):
    """The randomness the engine needs; `random.Random(seed)` is one."""

    def uniform(self, a: float, b: float) -> float: ...

    def getrandbits(self, k: int, /) -> int: ...


def backoff(attempt: int, rng: Rng) -> float:
    """Delay before retransmission number `attempt + 1` (attempt 0 = first send)."""
    base: float = min(BACKOFF_FIRST * float(2 ** min(attempt, 6)), BACKOFF_MAX)
    jitter: float = rng.uniform(-BACKOFF_JITTER, BACKOFF_JITTER)
    return base + jitter


def renew_retry(now: float, deadline: float, min_retry: float) -> float:
    """When to retransmit in RENEWING/REBINDING (RFC 2131 §4.4.5).

    Half the time left until `deadline` (T2 or expiry), but at least `min_retry`
    (60 s in the RFC). A retry past the deadline never happens: the deadline's
    own timer fires first.
    """
    return now + max((deadline - now) / 2, min_retry)


def lease_timers(
    lease_time: int, t1: int | None, t2: int | None
) -> tuple[float | None, float | None]:
    """Sanitised (T1, T2) offsets for a lease, or (None, None) for an infinite one.

    The server's option 58/59 values are used only if 0 < T1 < T2 < lease holds
    for the pair (a missing one takes its default, ½ and ⅞ of the lease). If the
    pair is inconsistent both are discarded for the defaults: a half-trusted
    mix (e.g. the server's T1 with our T2) can still be inconsistent, and the
    defaults always satisfy the invariant for any lease_time > 0.
    """
    if lease_time == INFINITE_LEASE:
        return None, None
    default_t1 = lease_time * 0.5
    default_t2 = lease_time * 0.875
    cand_t1 = float(t1) if t1 is not None else default_t1
    cand_t2 = float(t2) if t2 is not None else default_t2
    if 0 < cand_t1 < cand_t2 < lease_time:
        return cand_t1, cand_t2
    return default_t1, default_t2
