"""The hub's clock: every stream visited about once a second, for what time decides.

Heartbeats, the write timeout, the maximum age, re-checks of authorization and aborting a
stream that cannot end by itself are not timers per stream (thousands of timer handles):
one task visits every subscription each tick. Streams stamp their writes with
:attr:`Clock.now`, the loop's time as of the last tick, cheaper than asking the loop once
per event; a write that starts between two ticks is stamped up to a tick early, so a write
timeout may end one up to a tick sooner than ``WRITE_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from pgsse import jitter
from pgsse.conf import PgsseSettings
from pgsse.subscription import EndReason, Subscription

__all__ = ["Clock"]


class Clock:
    """Visits ``subscriptions`` (every stream the hub tracks) each tick."""

    def __init__(self, settings: PgsseSettings, subscriptions: Iterable[Subscription]) -> None:
        self._settings = settings
        self._subscriptions = subscriptions
        #: The loop's time as of the last tick (at most a tick old).
        self.now = 0.0
        #: Seconds between ticks: at most a second, and often enough for the shortest
        #: interval it enforces.
        self.period = min(1.0, settings.HEARTBEAT_INTERVAL / 2, settings.WRITE_TIMEOUT / 2)

    def start(self) -> None:
        self.now = asyncio.get_running_loop().time()

    async def run(self, also: Callable[[], None]) -> None:
        """Tick forever; ``also`` runs on every tick too (expiry of the read cache)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.period)
            self.tick(loop.time())
            also()

    def tick(self, now: float) -> None:
        self.now = now
        settings = self._settings
        heartbeat = settings.HEARTBEAT_INTERVAL
        write_timeout = settings.WRITE_TIMEOUT
        recheck = settings.REAUTHORIZE_INTERVAL
        for subscription in self._subscriptions:
            if subscription.end_reason is not None:
                # Ended but still writing: the client does not read, no retry: can get
                # through. (One merely waiting for the CPU gets there by itself.)
                if subscription.writing_since and now >= subscription.abort_at:
                    subscription.abort()
            elif subscription.writing_since:
                if now - subscription.writing_since >= write_timeout:
                    # Stuck in a write: no retry: can get through, cancel right away.
                    subscription.end(EndReason.WRITE_TIMEOUT, abort_after=0)
                    subscription.abort()
            elif now >= subscription.deadline:
                subscription.end(EndReason.MAX_AGE)
            elif now >= subscription.recheck_at and recheck is not None:
                subscription.recheck_at = now + recheck * jitter.uniform(0.9, 1.1)
                subscription.ask_recheck()
            elif now - subscription.last_write >= heartbeat:
                subscription.beat()
