"""Reading the log for streams and feeds: two connections, and reads shared between streams.

A reconnect storm brings back hundreds of streams from the same position at once (every
client of a worker that just restarted, say). Each would read the same rows. Instead, a
read is keyed by ``(channel, after)`` and kept for a few seconds: a stream resuming from
a position another stream has just read is served the same events, and reads in flight
are awaited rather than repeated. The log only grows at its end, so an earlier read of
the same position stays true; it is reused when it reaches as far as the new reader needs,
or when it was cut by the batch bounds (the reader then continues from its last event).

Reads are unbounded above (``seq > after``) so that they serve readers that need more than
the first did, and bounded in size (events and bytes) so that a batch never holds more
than ``REPLAY_BATCH`` events or about ``MAX_BUFFERED_BYTES / 2`` bytes of data. What is
kept is bounded too: ``READ_CACHE_BYTES`` of event data at most, none of it older than
``READ_CACHE_SECONDS`` (the hub's clock expires it, even when no stream reads).

Every read takes at most ``READ_TIMEOUT``: a connection that does not answer (a network
that drops packets silently keeps a query waiting for a quarter of an hour) is closed and
replaced, and the read fails (its catch-up is retried, its stream resumes later). The
connections use TCP keepalive and a server-side ``statement_timeout`` as well.

A row that pgsse could not have written (an event type with a line break, inserted by
hand) is served as a redacted event, an id-only frame, and logged once: it must not break
delivery on its channel, nor every replay across it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection

from pgsse import log
from pgsse.conf import PgsseSettings
from pgsse.connection import TCP_KEEPALIVE
from pgsse.log import ChannelHead, LoggedEvent
from pgsse.reader_connections import ReaderConnections, shut
from pgsse.stats import Counters

__all__ = ["LogReader"]

logger = logging.getLogger("pgsse.log_reader")

#: Reads kept for other streams, at most (besides the bounds in bytes and age).
SHARED_READS_KEPT = 256

T = TypeVar("T")


@dataclass
class _Read:
    events: list[LoggedEvent]
    cut: bool
    at: float = field(default_factory=time.monotonic)
    #: Bytes of event data held.
    size: int = 0

    def covers(self, upto: int) -> bool:
        """Whether this read serves a reader that needs events up to ``upto``."""
        return self.cut or bool(self.events and self.events[-1].seq >= upto)


class LogReader:
    """The hub's reads of the log: events after a position, and channel heads."""

    def __init__(self, conninfo: dict[str, Any], settings: PgsseSettings, counters: Counters):
        self._counters = counters
        self._limit = settings.REPLAY_BATCH
        self._budget = max(1, settings.MAX_BUFFERED_BYTES // 2)
        self._timeout = settings.READ_TIMEOUT
        self._cache_bytes = settings.READ_CACHE_BYTES
        self._cache_seconds = settings.READ_CACHE_SECONDS
        self._held = 0
        # Keepalive and a statement timeout: explicit settings in DATABASES win.
        options = {**TCP_KEEPALIVE, **conninfo}
        options["options"] = _with_statement_timeout(conninfo.get("options"), self._timeout)
        kwargs = {"connect_timeout": max(2, round(self._timeout)), **options}

        async def connect() -> AsyncConnection[Any]:
            return await AsyncConnection.connect(**kwargs, autocommit=True)

        # Two connections at most, whatever the number of streams.
        self._connections = ReaderConnections(connect, 2, settings.SUBSCRIBE_TIMEOUT)
        self._done: OrderedDict[tuple[str, int], _Read] = OrderedDict()
        self._running: dict[tuple[str, int], asyncio.Future[_Read]] = {}
        #: Reads in flight when their channel's history changed (``forget``): they may
        #: hold what was erased, and are not kept for others.
        self._stale: set[asyncio.Future[_Read]] = set()

    async def open(self) -> None:
        """Nothing to do: connections are made by the reads that need them."""

    async def close(self) -> None:
        for task in self._running.values():
            task.cancel()
        await self._connections.close()

    async def events_after(self, channel: str, after: int, upto: int) -> list[LoggedEvent]:
        """The first events of ``channel`` after seq ``after``, none beyond ``upto``.

        At most one batch: the caller continues from the last event returned. An empty or
        non-contiguous answer means the log does not hold what follows ``after``.
        """
        key = (channel, after)
        read = self._shared(key, upto)
        if read is None:
            running = self._running.get(key)
            if running is not None:
                read = await asyncio.shield(running)
            if read is None or not read.covers(upto):
                read = await asyncio.shield(self._start(key))
            else:
                self._counters.shared_reads += 1
        else:
            self._counters.shared_reads += 1
        if read.events and read.events[-1].seq > upto:
            return [event for event in read.events if event.seq <= upto]
        return read.events

    def _shared(self, key: tuple[str, int], upto: int) -> _Read | None:
        read = self._done.get(key)
        if read is None:
            return None
        if time.monotonic() - read.at > self._cache_seconds:
            self._drop(key)
            return None
        return read if read.covers(upto) else None

    def expire(self) -> None:
        """Drop the reads kept for longer than ``READ_CACHE_SECONDS`` (oldest first)."""
        oldest = time.monotonic() - self._cache_seconds
        while self._done:
            key, read = next(iter(self._done.items()))
            if read.at > oldest:
                break
            self._drop(key)

    def _drop(self, key: tuple[str, int]) -> None:
        self._held -= self._done.pop(key).size

    def forget(self, channel: str) -> None:
        """``channel``'s history changed (events redacted, the channel purged): drop what
        was read of it, and keep nothing that a read in flight brings back."""
        for key in [key for key in self._done if key[0] == channel]:
            self._drop(key)
        for key in [key for key in self._running if key[0] == channel]:
            # Its waiters still get it (they asked before the change committed); later
            # readers read afresh.
            self._stale.add(self._running.pop(key))

    def _start(self, key: tuple[str, int]) -> asyncio.Task[_Read]:
        # A task of its own, awaited through shield(): a stream that leaves while waiting
        # does not cancel the read the others wait for.
        task = asyncio.get_running_loop().create_task(self._fetch(key))
        self._running[key] = task
        task.add_done_callback(lambda done: self._finish(key, done))
        return task

    async def _fetch(self, key: tuple[str, int]) -> _Read:
        self._counters.log_reads += 1

        async def read(conn: AsyncConnection[Any]) -> tuple[list[LoggedEvent], bool]:
            return await log.read_batch(conn, *key, self._limit, self._budget)

        events, cut = await self._within_timeout(read)
        events = [self._sound(event) for event in events]
        return _Read(events, cut, size=sum(len(event.data) for event in events))

    def _sound(self, event: LoggedEvent) -> LoggedEvent:
        """``event``, or an id-only stand-in if it cannot be framed (a row pgsse did not
        write): its seq stays, so its channel's delivery and replays go on past it."""
        if event.redacted:
            return event
        problem = log.event_type_problem(event.type)
        if problem is None:
            return event
        self._counters.failures += 1
        logger.error(
            "channel %s: event %s cannot be sent (%s); streams skip it",
            event.channel,
            event.seq,
            problem,
            extra={"channel": event.channel, "seq": event.seq},
        )
        return dataclasses.replace(event, type="", data="", redacted=True)

    async def _within_timeout(self, work: Callable[[AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``work(conn)`` on a pooled connection, given up after ``READ_TIMEOUT``.

        Not by cancelling the query: psycopg then asks the server to cancel it and waits
        for the answer, which a silent network never brings. The connection's socket is
        shut down instead: the query fails at once and the connection is closed.
        """
        while True:
            async with self._connections.connection() as (conn, new):
                try:
                    return await self._bounded(conn, work(conn))
                except psycopg.OperationalError:
                    if new:
                        raise
                    # Idle for a while: the server may have closed it (a restart). The
                    # next one is another idle connection, or a new one.

    async def _bounded(self, conn: AsyncConnection[Any], work: Awaitable[T]) -> T:
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=self._timeout)
        finally:
            if not task.done():
                shut(conn)  # timed out, or the caller was cancelled: nothing waits
                await asyncio.gather(task, return_exceptions=True)
        if not done:
            raise TimeoutError(f"a read of the log took more than {self._timeout:g} s")
        return task.result()

    def _finish(self, key: tuple[str, int], task: asyncio.Task[_Read]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if task.cancelled():
            self._stale.discard(task)
            return
        # exception() also marks a failure as seen: each waiter raises it.
        if task.exception() is None and task not in self._stale:
            self._keep(key, task.result())
        self._stale.discard(task)

    def _keep(self, key: tuple[str, int], read: _Read) -> None:
        if key in self._done:
            self._drop(key)
        if read.size > self._cache_bytes:
            return  # kept, it would push every other read out
        self._done[key] = read
        self._held += read.size
        while len(self._done) > SHARED_READS_KEPT or self._held > self._cache_bytes:
            self._drop(next(iter(self._done)))

    @property
    def cached_bytes(self) -> int:
        """Bytes of event data kept for other streams now."""
        return self._held

    async def heads(self, channels: Sequence[str]) -> dict[str, ChannelHead]:
        """The log's head (newest and pruned seq) of each channel."""

        async def read(conn: AsyncConnection[Any]) -> dict[str, ChannelHead]:
            return await log.read_heads(conn, channels)

        return await self._within_timeout(read)

    async def notification_queue_usage(self) -> float:
        """PostgreSQL's ``pg_notification_queue_usage()``: the fraction (0 to 1) of the
        cluster's NOTIFY queue taken by notifications some listener has not read yet."""

        async def read(conn: AsyncConnection[Any]) -> float:
            cursor = await conn.execute("SELECT pg_notification_queue_usage()")
            row = await cursor.fetchone()
            return float(row[0]) if row is not None else 0.0

        return await self._within_timeout(read)


def _with_statement_timeout(options: object, seconds: float) -> str:
    """libpq ``options`` with a ``statement_timeout`` (unless they set one already)."""
    given = str(options or "")
    if "statement_timeout" in given:
        return given
    return f"{given} -c statement_timeout={max(1, round(seconds * 1000))}".strip()
