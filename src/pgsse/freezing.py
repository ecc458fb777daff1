"""Keeping the streams' long-lived objects out of the cyclic garbage collector's full passes.

A full pass walks every tracked object, about 40 per open stream (the server's connection,
the tasks, the stream), which took half a second with 10,000 streams open. ``gc.freeze()``
moves every object alive at that moment into a permanent generation that no pass walks.
Frozen objects are still freed by reference counting when their stream ends (a stream's
life leaves no reference cycle behind: tested), so what freezing can pin is *cyclic
garbage*: objects in a cycle, unreachable, not yet collected. So a full collection runs
first, and only what survives it is frozen: it walks only what was allocated since the
previous freeze (the frozen objects are not walked), a few milliseconds.

Without that collection, each freeze pinned whatever cyclic garbage had reached the oldest
generation (requests for pages leave plenty): a long-lived process serving pages beside
its streams grew by megabytes per freeze.
"""

from __future__ import annotations

import gc

__all__ = ["FREEZE_EVERY", "Freezer"]

#: Streams opened between two freezes.
FREEZE_EVERY = 500


class Freezer:
    """Freezes the garbage collector's survivors once another ``every`` streams opened."""

    def __init__(self, every: int = FREEZE_EVERY) -> None:
        self._every = every
        self._opened = 0

    def opened(self) -> None:
        """One more stream opened. Counted here rather than on the clock: a worker taking
        back thousands of clients opens more than 2,000 streams a second, and a full pass
        over one second's worth of unfrozen streams took 60-85 ms."""
        self._opened += 1
        if self._opened >= self._every:
            self._opened = 0
            gc.collect()
            gc.freeze()
