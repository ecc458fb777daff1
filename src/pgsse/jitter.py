"""Random spreads for pgsse's timers: reconnect delays, re-checks, stream ages, sweeps and
retry hints, spread so that many processes or streams do not act in the same instant.

They are drawn from a generator of pgsse's own rather than from Python's global one: a
test that seeds or replays the global generator (Hypothesis does for every example) then
sees the same numbers whatever the hub's background tasks drew meanwhile.
"""

from __future__ import annotations

import random

__all__ = ["randint", "uniform"]

_generator = random.Random()


def uniform(low: float, high: float) -> float:
    """A float between ``low`` and ``high``."""
    return _generator.uniform(low, high)


def randint(low: int, high: int) -> int:
    """An integer between ``low`` and ``high``, both included."""
    return _generator.randint(low, high)
