"""Retention: how long the event log keeps a channel's events, and pruning them.

``PGSSE["RETENTION"]`` maps channel-name prefixes to rules; the longest prefix that
matches a channel wins, and ``""`` is the default::

    PGSSE = {"RETENTION": {
        "": {"max_age": 7 * 24 * 3600, "max_events": 10_000},
        "typing:": {"max_age": 60},
    }}

``max_age`` is in seconds; either limit may be ``None`` (no limit of that kind). An event
is pruned when it is older than ``max_age`` or more than ``max_events`` behind the newest.
``"lossy": True`` marks channels whose events are hints: resuming past pruned events
skips ahead instead of resetting the stream.

Pruning is safe while streams are live. It first raises the channel's ``pruned_seq``
(committed at once, so the channel's row lock is held for one statement), then deletes
in batches. A client resuming from a position still retained replays normally; one
whose next event is gone gets a ``reset`` event: the replay checks that the log
continues exactly where the client stopped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.backends.utils import CursorWrapper

from pgsse import jitter
from pgsse.channels import RESERVED_PREFIX
from pgsse.conf import get_settings, retention_problem
from pgsse.stats import Counters

__all__ = ["PruneReport", "Rule", "prune", "prune_periodically", "retention_problem", "rule_for"]

logger = logging.getLogger("pgsse.retention")

# Arbitrary but fixed: pg_try_advisory_lock key that lets one process prune at a time.
_PRUNE_LOCK = 0x70677373_65707275  # "pgssepru"
_DELETE_BATCH = 5000

# Deleted in ascending seq ranges, so that at any moment what is gone is a prefix of the
# channel: readers then see either the event they ask for or a clear gap at the start.
_DELETE_SQL = "DELETE FROM pgsse_event WHERE channel = %s AND seq > %s AND seq <= %s"


@dataclass(frozen=True)
class Rule:
    max_age: float | None = None
    max_events: int | None = None
    #: Events of these channels are hints (typing notices, cursors): a client whose next
    #: event was pruned skips ahead to the newest instead of getting a ``reset``.
    lossy: bool = False


@dataclass
class PruneReport:
    channels: int = 0
    events_deleted: int = 0
    skipped: bool = False  # another process was pruning


def _rules(config: Mapping[str, Mapping[str, object]]) -> dict[str, Rule]:
    problem = retention_problem(config)
    if problem is not None:
        raise ImproperlyConfigured(f"PGSSE['RETENTION'] must be {problem}")
    return {
        prefix: Rule(
            rule.get("max_age"),  # type: ignore[arg-type]
            rule.get("max_events"),  # type: ignore[arg-type]
            bool(rule.get("lossy", False)),
        )
        for prefix, rule in config.items()
    }


#: pgsse's own channels (close requests) matter for seconds: a day at most, and hints only.
_RESERVED_RULE = Rule(max_age=24 * 3600, max_events=1000, lossy=True)


def rule_for(channel: str, config: Mapping[str, Mapping[str, object]] | None = None) -> Rule:
    """The rule for ``channel``: the longest matching prefix's, or no limit at all."""
    if channel.startswith(RESERVED_PREFIX):
        return _RESERVED_RULE
    rules = _rules(get_settings().RETENTION if config is None else config)
    matches = [prefix for prefix in rules if channel.startswith(prefix)]
    return rules[max(matches, key=len)] if matches else Rule()


def _cut(cursor: CursorWrapper, channel: str, last_seq: int, rule: Rule, now: dt.datetime) -> int:
    """The highest seq that ``rule`` prunes from ``channel``."""
    cut = last_seq - rule.max_events if rule.max_events is not None else 0
    if rule.max_age is not None:
        cutoff = now - dt.timedelta(seconds=rule.max_age)
        cursor.execute(
            "SELECT max(seq) FROM pgsse_event WHERE channel = %s AND created_at < %s",
            (channel, cutoff),
        )
        oldest_kept = cursor.fetchone()[0]
        cut = max(cut, oldest_kept or 0)
    return cut


def _delete_through(cursor: CursorWrapper, channel: str, cut: int) -> int:
    """Delete ``channel``'s events up to seq ``cut``, oldest first, in batches."""
    cursor.execute("SELECT min(seq) FROM pgsse_event WHERE channel = %s", (channel,))
    oldest = cursor.fetchone()[0]
    if oldest is None:
        return 0
    deleted = 0
    low = oldest - 1
    while low < cut:
        high = min(low + _DELETE_BATCH, cut)
        cursor.execute(_DELETE_SQL, (channel, low, high))
        deleted += cursor.rowcount
        low = high
    return deleted


def prune(now: dt.datetime | None = None, using: str | None = None) -> PruneReport:
    """Prune every channel by its rule. Runs outside any transaction (autocommit)."""
    settings = get_settings()
    connection = connections[using or settings.DATABASE]
    if not connection.get_autocommit():
        # Inside a transaction every channel row touched would stay locked until the end.
        raise RuntimeError("prune() must run outside transaction.atomic()")
    config = settings.RETENTION
    now = now or dt.datetime.now(dt.UTC)
    report = PruneReport()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", (_PRUNE_LOCK,))
        if not cursor.fetchone()[0]:
            report.skipped = True
            return report
        try:
            cursor.execute("SELECT name, last_seq, pruned_seq FROM pgsse_channel ORDER BY name")
            for name, last_seq, pruned_seq in cursor.fetchall():
                cut = _cut(cursor, name, last_seq, rule_for(name, config), now)
                if cut <= pruned_seq:
                    continue
                cursor.execute(
                    "UPDATE pgsse_channel SET pruned_seq = %s WHERE name = %s AND pruned_seq < %s",
                    (cut, name, cut),
                )
                report.channels += 1
                report.events_deleted += _delete_through(cursor, name, cut)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (_PRUNE_LOCK,))
    return report


async def prune_periodically(interval: float, counters: Counters | None = None) -> None:
    """Prune every ``interval`` seconds, forever; run as a task by each process's hub
    (whose ``counters`` count the failures)."""
    # Spread the processes of a fleet over the interval; one prunes at a time anyway.
    await asyncio.sleep(jitter.uniform(0, interval))
    while True:
        try:
            report = await sync_to_async(_prune_and_disconnect, thread_sensitive=False)()
            if report.events_deleted:
                logger.info(
                    "pruned %s events from %s channels", report.events_deleted, report.channels
                )
        except Exception:
            if counters is not None:
                counters.failures += 1
            logger.warning(
                "pruning the event log failed; next try in %s s", interval, exc_info=True
            )
        await asyncio.sleep(interval)


def _prune_and_disconnect() -> PruneReport:
    # Runs in a worker thread: give its connection back when done.
    try:
        return prune()
    finally:
        connections.close_all()
