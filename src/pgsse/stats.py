"""What a hub has done: counters kept as it works, and the snapshot operators read.

:class:`Counters` is the hub's mutable tally (plain integers, bumped in the hot path);
:meth:`Counters.snapshot` turns it into a :class:`HubStats`, the public, immutable view that
tests, health checks and metrics read.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Counters", "HubStats"]


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


class Counters:
    """The hub's running tally; cheap to bump, copied out by :meth:`snapshot`."""

    __slots__ = (
        "catch_ups",
        "delivered",
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
        )
