"""What a hub has done: counters kept as it works, and the snapshot operators read.

:class:`Counters` is the hub's mutable tally (plain integers, bumped in the hot path);
:meth:`Counters.snapshot` turns it into a :class:`HubStats`, the public, immutable view that
tests, health checks and metrics read.

Two tallies live beside it: the delivery lag of every event the hub fans out
(:class:`LagHistogram`, fixed buckets, one observation per event, not per stream), and what
``publish()`` did in this process (:func:`publish_stats`), which any thread may bump.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pgsse.log import LoggedEvent

__all__ = [
    "LAG_BUCKETS",
    "Counters",
    "DeliveryLag",
    "HubStats",
    "LagHistogram",
    "PublishStats",
    "publish_stats",
]

#: Upper bounds, in seconds, of the delivery-lag buckets (the last bucket is unbounded).
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class DeliveryLag:
    """Seconds from an event's ``created_at`` (its transaction's timestamp) to fan-out.

    ``counts[i]`` events took at most ``bounds[i]`` seconds (and more than the bound
    before); ``counts[-1]`` took longer than the last bound. Not cumulative.
    """

    bounds: tuple[float, ...] = LAG_BUCKETS
    counts: tuple[int, ...] = (0,) * (len(LAG_BUCKETS) + 1)
    #: Sum of every observed lag, in seconds.
    total: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.counts)

    def quantile(self, q: float) -> float | None:
        """The bucket bound below which a fraction ``q`` of the events fell (an upper
        bound on the true quantile); None without events, inf beyond the last bound."""
        wanted = q * self.count
        if not wanted:
            return None
        seen = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            seen += count
            if seen >= wanted:
                return bound
        return float("inf")


class LagHistogram:
    """Fixed buckets of delivery lag, bumped once per event fanned out."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LAG_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, events: Sequence[LoggedEvent]) -> None:
        """Count the lag of ``events`` (those whose ``created_at`` is known) as of now."""
        now = time.time()  # wall clock: created_at is PostgreSQL's wall clock
        counts = self.counts
        for event in events:
            created = event.created_at
            if created is not None:
                lag = max(0.0, now - created)  # clocks of two hosts may disagree a little
                counts[bisect_left(LAG_BUCKETS, lag)] += 1
                self.total += lag

    def snapshot(self) -> DeliveryLag:
        return DeliveryLag(LAG_BUCKETS, tuple(self.counts), self.total)


@dataclass(frozen=True)
class HubStats:
    """A snapshot of one process's hub. Counts run from the hub's start."""

    #: Channels some open stream follows (each is LISTENed to once).
    channels: int
    #: Streams open now (subscribed to the hub).
    subscriptions: int
    #: Whether the listener connection is up and LISTENing.
    listener_connected: bool
    #: Listener connections made (1 means it never had to reconnect).
    listener_connections: int
    #: Notifications received, and those pgsse did not send (ignored).
    notifications: int
    foreign_notifications: int
    #: Seconds since the last notification, None if none came yet.
    last_notification_age: float | None
    #: Catch-ups from the log (after a lost notification, a payload sent by reference, a
    #: listener reconnect), and queries that read events from the log (replays included).
    catch_ups: int
    log_reads: int
    #: Replay and catch-up reads answered by a read another stream had made (shared reads).
    shared_reads: int
    #: Events handed to streams (one per stream that got it).
    delivered: int
    #: Events found missing from the log without pruning to explain it (a manual DELETE).
    holes: int
    #: Unexpected errors the hub survived (each also logged with its traceback).
    failures: int
    #: Streams opened since start, and refused (by reason: ``process_full``, ``user_limit``).
    streams_opened: int
    streams_refused: dict[str, int] = field(default_factory=dict)
    #: Streams ended, by reason (``client_left``, ``slow_consumer``, ``shutdown``,
    #: ``closed_on_purpose``, ``max_age``, ``reauthorization``, ``write_timeout``, ...).
    streams_closed: dict[str, int] = field(default_factory=dict)
    #: Commit-to-fan-out lag of the events delivered live (see :class:`DeliveryLag`).
    delivery_lag: DeliveryLag = field(default_factory=DeliveryLag)


class Counters:
    """The hub's running tally; cheap to bump, copied out by :meth:`snapshot`."""

    __slots__ = (
        "catch_ups",
        "delivered",
        "delivery_lag",
        "failures",
        "foreign_notifications",
        "holes",
        "last_notification_at",
        "log_reads",
        "notifications",
        "shared_reads",
        "streams_closed",
        "streams_opened",
        "streams_refused",
    )

    def __init__(self) -> None:
        self.notifications = 0
        self.foreign_notifications = 0
        self.last_notification_at: float | None = None
        self.catch_ups = 0
        self.log_reads = 0
        self.shared_reads = 0
        self.delivered = 0
        self.holes = 0
        self.failures = 0
        self.streams_opened = 0
        self.streams_refused: Counter[str] = Counter()
        self.streams_closed: Counter[str] = Counter()
        self.delivery_lag = LagHistogram()

    def snapshot(
        self,
        *,
        now: float,
        channels: int,
        subscriptions: int,
        listener_connected: bool,
        listener_connections: int,
    ) -> HubStats:
        last = self.last_notification_at
        return HubStats(
            channels=channels,
            subscriptions=subscriptions,
            listener_connected=listener_connected,
            listener_connections=listener_connections,
            notifications=self.notifications,
            foreign_notifications=self.foreign_notifications,
            last_notification_age=None if last is None else max(0.0, now - last),
            catch_ups=self.catch_ups,
            log_reads=self.log_reads,
            shared_reads=self.shared_reads,
            delivered=self.delivered,
            holes=self.holes,
            failures=self.failures,
            streams_opened=self.streams_opened,
            streams_refused=dict(self.streams_refused),
            streams_closed=dict(self.streams_closed),
            delivery_lag=self.delivery_lag.snapshot(),
        )


@dataclass(frozen=True)
class PublishStats:
    """What ``publish()`` and ``publish_many()`` did in this process since it started."""

    #: Events appended to the log (counted before commit: a rollback takes them back out of
    #: the log, not out of this count).
    events: int
    #: Calls that raised, by kind: ``invalid`` (channel, type or data refused before the
    #: database was touched) and ``database`` (the append failed).
    errors: dict[str, int]


class _PublishCounters:
    """Bumped by publishing code in any thread: a lock keeps the counts exact."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events = 0
        self._errors: Counter[str] = Counter()

    def appended(self, count: int) -> None:
        with self._lock:
            self._events += count

    def failed(self, kind: str) -> None:
        with self._lock:
            self._errors[kind] += 1

    def snapshot(self) -> PublishStats:
        with self._lock:
            return PublishStats(self._events, dict(self._errors))


publish_counters = _PublishCounters()


def publish_stats() -> PublishStats:
    """What ``publish()`` did in this process: events appended and errors by kind."""
    return publish_counters.snapshot()
