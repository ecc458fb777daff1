"""The hub's background tasks: watched while the hub runs, all cancelled when it closes.

Two kinds. Duties that must run for as long as the hub does (the sweep, the clock, the
pruning) are *kept running*: if one returns or raises, the failure is counted and logged
with its traceback, and the duty starts again after a backoff (so that a bug or an outage
cannot make it spin), instead of ending silently while every stream waits on it. One-off
work (a catch-up, a refresh of heads) is *spawned*: its failures are its own to handle.
Every task is the supervisor's, and :meth:`Supervisor.close` cancels and awaits them all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from pgsse.stats import Counters

__all__ = ["Supervisor"]

logger = logging.getLogger("pgsse.hub")

#: Seconds before a failed duty starts again, the first time and at most.
RESTART_MIN_DELAY = 0.5
RESTART_MAX_DELAY = 30.0


class Supervisor:
    """Owns the hub's tasks."""

    def __init__(
        self,
        counters: Counters,
        restart_delays: tuple[float, float] = (RESTART_MIN_DELAY, RESTART_MAX_DELAY),
    ) -> None:
        self._counters = counters
        #: Seconds before a failed duty starts again: the first time, and at most.
        self._first_delay, self._last_delay = restart_delays
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def keep_running(self, name: str, duty: Callable[[], Awaitable[None]]) -> None:
        """Run ``duty()`` until the hub closes, starting it again whenever it stops."""
        self.spawn(self._keep(name, duty), name=f"pgsse-{name}")

    def spawn(self, work: Coroutine[Any, Any, None], name: str | None = None) -> None:
        """Run ``work`` in a task of the hub (cancelled when the hub closes)."""
        if self._closed:
            work.close()  # never started: no "coroutine was never awaited" warning
            return
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel every task and wait for them to finish."""
        self._closed = True
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep(self, name: str, duty: Callable[[], Awaitable[None]]) -> None:
        loop = asyncio.get_running_loop()
        delay = self._first_delay
        while True:
            started = loop.time()
            try:
                await duty()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("the hub's %s failed; it starts again in %.1f s", name, delay)
            else:
                logger.error("the hub's %s stopped; it starts again in %.1f s", name, delay)
            self._counters.failures += 1
            if loop.time() - started > self._last_delay:
                delay = self._first_delay  # it ran well for a while: not a tight loop
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._last_delay)
