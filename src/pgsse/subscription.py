"""A stream's mailbox in the hub: a bounded list of pending events and one waiter.

Each subscription has its own future (never one shared per channel: cancelling a stream's
task cancels the future it awaits, which would wake every other stream with an error).
Pushing is synchronous and allocation-light; the stream takes everything pending at once,
so a burst of events becomes one write.
"""

from __future__ import annotations

import asyncio

from pgsse.log import LoggedEvent

__all__ = ["Subscription"]


class Subscription:
    """Events of ``channels`` queued for one stream, at most ``limit`` of them."""

    __slots__ = (
        "_waiter",
        "channels",
        "closed",
        "finished",
        "limit",
        "overflowed",
        "pending",
        "task",
    )

    #: Seconds an overflowed stream gets to end by itself before its task is cancelled.
    ABORT_AFTER = 1.0

    def __init__(self, channels: tuple[str, ...], limit: int) -> None:
        self.channels = channels
        self.limit = limit
        #: The task serving the stream; cancelled if it is stuck writing to a client that
        #: stopped reading (its socket buffers are full, so no ``retry:`` can get through).
        self.task = asyncio.current_task()
        #: The hub has let go of this subscription.
        self.finished = False
        self.pending: list[LoggedEvent] = []
        #: The stream fell more than ``limit`` events behind; it must close and resume.
        self.overflowed = False
        #: The hub is shutting down (or cannot deliver); the stream must close.
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None

    def push(self, event: LoggedEvent) -> None:
        if self.overflowed or self.closed:
            return
        if len(self.pending) >= self.limit:
            # Drop what is queued: the stream resumes from the log after reconnecting.
            self.overflowed = True
            self.pending = []
            asyncio.get_running_loop().call_later(self.ABORT_AFTER, self._abort)
        else:
            self.pending.append(event)
        self._wake()

    def _abort(self) -> None:
        if not self.finished and self.task is not None and not self.task.done():
            self.task.cancel()

    def close(self) -> None:
        """End the stream: it sends ``retry:`` and returns, or is cancelled if it cannot."""
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_later(self.ABORT_AFTER, self._abort)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_batch(self, timeout: float) -> list[LoggedEvent]:
        """Everything pending, waiting up to ``timeout`` seconds for something to arrive.

        Returns an empty list on timeout, and also when the subscription ends (check
        ``overflowed`` and ``closed``).
        """
        if not self.pending and not self.overflowed and not self.closed:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(timeout, self._wake)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        batch, self.pending = self.pending, []
        return batch
