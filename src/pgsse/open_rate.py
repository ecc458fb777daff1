"""How often one user, or one client address, may open a stream in a process.

Every open costs work before the first byte (the request phase: session, user, hooks; then
a replay), and a refused open costs most of it too. Without a bound, one account reopening
from position 0 made the server replay gigabytes, and one address asking for a stream URL
that answers 404 slowed every other user's opens. So opens are counted per client address
(before any work on the request) and per logged-in user (once authenticated), refused or
not, and refused with 429 and ``Retry-After`` beyond ``OPENS_PER_MINUTE_PER_ADDRESS`` and
``OPENS_PER_MINUTE_PER_USER``.

Each is a token bucket: a client may open a third of its minute's allowance at once (all
of a user's tabs reconnecting after a deploy), then one every ``60 / per_minute`` seconds.
Counts are per process, like the caps of :mod:`pgsse.admission`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from pgsse.admission import Refusal
from pgsse.conf import PgsseSettings
from pgsse.stats import Counters

__all__ = ["OpenRate"]

#: Clients remembered at most; beyond, those whose allowance is whole again are forgotten.
_REMEMBERED = 50_000


class OpenRate:
    """Token buckets of stream opens, keyed by user (``user:<pk>``) and address."""

    def __init__(self, settings: Callable[[], PgsseSettings], counters: Counters) -> None:
        #: Read at each open: ``override_settings`` in a test applies at once.
        self._settings = settings
        self._counters = counters
        #: key -> (tokens left, monotonic time they were counted)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()  # request phases run in threads

    def refuse_address(self, address: str) -> Refusal | None:
        """Count one open from ``address``; why it is refused, if it is."""
        per_minute = self._settings().OPENS_PER_MINUTE_PER_ADDRESS
        if not address or per_minute is None:
            return None
        return self._take("address " + address, per_minute, "address_rate")

    def refuse_user(self, client: str) -> Refusal | None:
        """Count one open by ``client`` (``user:<pk>``; "" is anonymous, not counted)."""
        per_minute = self._settings().OPENS_PER_MINUTE_PER_USER
        if not client or per_minute is None:
            return None
        return self._take(client, per_minute, "user_rate")

    def _take(self, key: str, per_minute: int, reason: str) -> Refusal | None:
        rate = per_minute / 60.0
        burst = max(1.0, per_minute / 3)
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > _REMEMBERED:
                    self._forget_idle(now)
                return None
            self._buckets[key] = (tokens, now)
        self._counters.streams_refused[reason] += 1
        wait = math.ceil((1.0 - tokens) / rate)
        return Refusal(
            429,
            reason,
            f"Too many streams opened; at most {per_minute} a minute. Retry in {wait} s.",
            wait,
        )

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets untouched for a minute (they have filled up again: their
        clients start afresh anyway); if that is not enough, the older half."""
        idle = [key for key, (_, at) in self._buckets.items() if now - at >= 60.0]
        for key in idle:
            del self._buckets[key]
        if len(self._buckets) > _REMEMBERED // 2:
            by_age = sorted(self._buckets, key=lambda key: self._buckets[key][1])
            for key in by_age[: len(by_age) // 2]:
                del self._buckets[key]
