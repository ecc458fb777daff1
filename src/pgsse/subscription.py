"""A stream's mailbox in the hub: the frames waiting to be written, bounded in bytes.

The hub pushes encoded frames (shared ``bytes``, built once per channel set) and the
stream takes everything pending at once, so a burst of events becomes one write. Pushing
is synchronous and allocation-light: an append, a sum, and at most one future woken.

Each subscription has its own future (never one shared per channel: cancelling a stream's
task cancels the future it awaits, which would wake every other stream with an error).
Time-based duties (heartbeats, the write timeout, the maximum age, aborting a stream that
cannot end by itself) are not timers per stream: the hub's clock visits every
subscription once per tick (see ``Hub._tick``).
"""

from __future__ import annotations

import asyncio
import math

__all__ = ["EndReason", "Subscription"]


class EndReason:
    """Why a stream ended: the words logs, stats and metrics use."""

    CLIENT_LEFT = "client_left"
    #: More than ``MAX_BUFFERED_BYTES`` waited for a client that reads too slowly.
    SLOW_CONSUMER = "slow_consumer"
    #: A write did not complete within ``WRITE_TIMEOUT`` seconds.
    WRITE_TIMEOUT = "write_timeout"
    SHUTDOWN = "shutdown"
    #: :func:`pgsse.close_streams` asked for it.
    CLOSED_ON_PURPOSE = "closed_on_purpose"
    MAX_AGE = "max_age"
    #: The periodic re-check of its authorization said no.
    REAUTHORIZATION = "reauthorization"
    #: Events of a channel are gone from the log (deleted by hand): the stream must resume.
    EVENTS_LOST = "events_lost"
    #: The log could not be read (replay failed).
    LOG_UNAVAILABLE = "log_unavailable"
    #: The listener could not LISTEN in time.
    NOT_STARTED = "not_started"
    #: The replay reached ``MAX_REPLAY_BYTES``: the client resumes where it stopped.
    REPLAY_LIMIT = "replay_limit"


class Subscription:
    """Frames of ``channels`` queued for one stream, at most ``limit`` bytes of them."""

    __slots__ = (
        "_waiter",
        "abort_at",
        "aborted",
        "channels",
        "client",
        "deadline",
        "end_reason",
        "finished",
        "heartbeat_due",
        "in_flight",
        "joined",
        "last_write",
        "limit",
        "pending",
        "pending_bytes",
        "recheck_at",
        "recheck_due",
        "task",
        "writing_since",
    )

    def __init__(
        self, channels: tuple[str, ...], client: str, limit: int, deadline: float = math.inf
    ) -> None:
        self.channels = channels
        #: Who the stream counts against (``user:<pk>``), empty for anonymous streams.
        self.client = client
        self.limit = limit
        #: Loop time after which the stream ends with ``MAX_AGE``.
        self.deadline = deadline
        #: The task serving the stream: cancelled if it cannot end by itself (stuck
        #: writing to a client that stopped reading, so no ``retry:`` can get through).
        self.task = asyncio.current_task()
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        #: Bytes of the write in progress: they count against ``limit`` until written.
        self.in_flight = 0
        #: Set when the server ends the stream: it sends ``retry:`` and returns.
        self.end_reason: str | None = None
        #: Joined to its channels (events reach it); the hub has let go of it.
        self.joined = False
        self.finished = False
        #: The hub cancelled the stream's task (see ``task``).
        self.aborted = False
        self.heartbeat_due = False
        #: Loop time of the next re-check of the stream's authorization (inf: none), and
        #: whether one is due now.
        self.recheck_at = math.inf
        self.recheck_due = False
        #: Loop time of the last write, and of the start of the write in progress (0: none).
        self.last_write = 0.0
        self.writing_since = 0.0
        #: Loop time at which an ended stream that has not finished gets cancelled (0: none).
        self.abort_at = 0.0
        self._waiter: asyncio.Future[None] | None = None

    def push(self, frame: bytes, size: int) -> None:
        """Queue ``frame`` (``size`` bytes long), unless the stream is ending."""
        if self.end_reason is not None:
            return
        self.pending.append(frame)
        self.pending_bytes += size
        # A frame alone (nothing else queued or being written) passes whatever its size:
        # the bound is on falling behind, and one large event must not end every stream.
        if self.pending_bytes + self.in_flight > self.limit and (
            self.in_flight or len(self.pending) > 1
        ):
            # Drop what is queued: the stream resumes from the log after reconnecting.
            self.pending = []
            self.pending_bytes = 0
            self.end(EndReason.SLOW_CONSUMER)
            return
        waiter = self._waiter  # _wake(), inlined: this runs once per stream per event
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def end(self, reason: str, abort_after: float = 1.0) -> None:
        """Ask the stream to end: it sends ``retry:`` and returns, or is cancelled if it
        has not finished ``abort_after`` seconds from now."""
        if self.end_reason is None:
            self.end_reason = reason
            if self.task is not None:
                self.abort_at = self.task.get_loop().time() + abort_after
        self.wake()

    def abort(self) -> None:
        """Cancel the stream's task: it could not end by itself."""
        if not self.finished and self.task is not None and not self.task.done():
            self.aborted = True
            self.task.cancel()

    def beat(self) -> None:
        """Ask an idle stream to send a heartbeat."""
        self.heartbeat_due = True
        self.wake()

    def ask_recheck(self) -> None:
        """Ask the stream to re-check its authorization."""
        self.recheck_due = True
        self.wake()

    def wake(self) -> None:
        """Wake the stream if it waits (for frames, or to join its channels)."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def waiter(self) -> asyncio.Future[None] | None:
        """A future to await until frames are pending, the stream must end, or a heartbeat
        or a re-check is due; None if one of them is the case already."""
        if self.pending or self.end_reason is not None or self.heartbeat_due or self.recheck_due:
            return None
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        return waiter

    def park(self) -> asyncio.Future[None]:
        """A future to await until :meth:`wake` (or the stream's end); while the stream
        waits to join its channels."""
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        if self.end_reason is not None:
            waiter.set_result(None)
        return waiter

    def take(self) -> list[bytes]:
        """Everything pending, oldest first; the mailbox is empty afterwards."""
        frames, self.pending = self.pending, []
        self.pending_bytes = 0
        self.heartbeat_due = False
        return frames

    def writing(self, now: float, size: int) -> None:
        """The stream starts writing ``size`` bytes (the clock watches for a timeout)."""
        self.writing_since = now
        self.in_flight = size

    def written(self, now: float) -> None:
        self.writing_since = 0.0
        self.in_flight = 0
        self.last_write = now
