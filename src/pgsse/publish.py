"""``publish()``, ``publish_many()`` and their async twins: append events to the log and
notify listeners.

All of them run on Django's connection for ``PGSSE["DATABASE"]``, so they join the caller's
transaction: inside ``transaction.atomic()`` the events are delivered if and only if the
transaction commits (PostgreSQL sends NOTIFY at commit, and the log rows commit with it).

Keep publishing transactions short: each channel's row stays locked until commit (that is
what makes seqs commit-ordered) and PostgreSQL serialises the commits of all notifying
transactions. Because of those row locks, two transactions that publish to channels A and B
in opposite orders can deadlock; ``publish_many()`` takes the locks in one fixed order.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connections

from pgsse import log
from pgsse.channels import validate_channel
from pgsse.conf import get_settings, require_installed
from pgsse.log import MAX_EVENT_TYPE_LENGTH
from pgsse.stats import publish_counters

__all__ = [
    "MAX_EVENT_TYPE_LENGTH",
    "InvalidEvent",
    "apublish",
    "apublish_many",
    "publish",
    "publish_many",
]


class InvalidEvent(ValueError):
    """An event that cannot be published; the message says why."""


@dataclass(frozen=True, slots=True)
class PublishedEvent:
    """One event as ``publish()`` appended it: ``text`` is the JSON its subscribers get."""

    channel: str
    event_type: str
    text: str
    seq: int


#: Called with the database alias and the events of every successful publish, before
#: commit. ``pgsse.testing.capture_events()`` adds itself here; nothing else does.
publish_observers: list[Callable[[str, Sequence[PublishedEvent]], None]] = []


P = ParamSpec("P")
R = TypeVar("R")


def _counted(function: Callable[P, R]) -> Callable[P, R]:
    """Count the calls of ``function`` that raise, by kind (``pgsse.stats.publish_stats``)."""

    @functools.wraps(function)
    def counted(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except DatabaseError:
            publish_counters.failed("database")
            raise
        except (TypeError, ValueError):
            publish_counters.failed("invalid")  # InvalidChannel and InvalidEvent included
            raise

    return counted


def _check_event_type(event_type: object) -> str:
    problem = log.event_type_problem(event_type)
    if problem is not None:
        raise InvalidEvent(problem)
    assert isinstance(event_type, str)
    return event_type


def _encode(data: Any, encoder: type[json.JSONEncoder]) -> str:
    # Compact, non-ASCII as it is: more events fit inline in a NOTIFY payload.
    return json.dumps(data, cls=encoder, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _tell_observers(alias: str, events: Sequence[PublishedEvent]) -> None:
    for observer in tuple(publish_observers):
        observer(alias, events)


@_counted
def publish(
    channel: str,
    event_type: str,
    data: Any,
    *,
    encoder: type[json.JSONEncoder] = DjangoJSONEncoder,
) -> int:
    """Append an event to ``channel``'s log and notify every process; return its seq.

    ``data`` is encoded to JSON with ``encoder`` (Django's ``DjangoJSONEncoder`` by
    default: datetimes, dates, times, durations, ``Decimal``, ``UUID`` and lazy
    translations become strings); subscribers receive the JSON text.
    Raises :class:`~pgsse.channels.InvalidChannel`, :class:`InvalidEvent`, or
    :class:`TypeError` / :class:`ValueError` for data the encoder cannot encode (NaN).
    """
    require_installed()
    validate_channel(channel)
    _check_event_type(event_type)
    text = _encode(data, encoder)
    alias = get_settings().DATABASE
    with connections[alias].cursor() as cursor:
        cursor.execute(log.APPEND_SQL, log.append_params(channel, event_type, text))
        seq: int = cursor.fetchone()[0]
    publish_counters.appended(1)
    if publish_observers:
        _tell_observers(alias, [PublishedEvent(channel, event_type, text, seq)])
    return seq


def _checked_events(
    events: Iterable[tuple[str, str, Any]], encoder: type[json.JSONEncoder]
) -> list[tuple[str, str, str]]:
    checked = []
    for index, event in enumerate(events):
        if not isinstance(event, tuple | list) or len(event) != 3:
            raise InvalidEvent(
                f"event {index} is {event!r}; publish_many() takes"
                " (channel, event_type, data) tuples"
            )
        channel, event_type, data = event
        validate_channel(channel)
        _check_event_type(event_type)
        checked.append((channel, event_type, _encode(data, encoder)))
    return checked


@_counted
def publish_many(
    events: Iterable[tuple[str, str, Any]],
    *,
    encoder: type[json.JSONEncoder] = DjangoJSONEncoder,
) -> list[int]:
    """Publish several ``(channel, event_type, data)`` events in the caller's transaction.

    The channels' row locks are taken in one fixed order (names sorted by code point)
    before anything is appended, so two transactions publishing to the same channels in
    opposite orders cannot deadlock. Returns the seqs in the order of ``events``; events
    of one channel get consecutive seqs in that order. Every event is checked and encoded
    before the database is touched: one bad event publishes none.
    """
    require_installed()
    checked = _checked_events(events, encoder)
    if not checked:
        return []
    counts = Counter(channel for channel, _, _ in checked)
    names = sorted(counts)
    alias = get_settings().DATABASE
    with connections[alias].cursor() as cursor:
        cursor.execute(log.RESERVE_SQL, {"names": names, "counts": [counts[n] for n in names]})
        next_seq = {name: last - counts[name] + 1 for name, last in cursor.fetchall()}
        seqs = []
        rows = []
        for channel, event_type, text in checked:
            seqs.append(next_seq[channel])
            next_seq[channel] += 1
            rows.append({**log.append_params(channel, event_type, text), "seq": seqs[-1]})
        cursor.executemany(log.APPEND_RESERVED_SQL, rows)
    publish_counters.appended(len(rows))
    if publish_observers:
        published = [
            PublishedEvent(channel, event_type, text, seq)
            for (channel, event_type, text), seq in zip(checked, seqs, strict=True)
        ]
        _tell_observers(alias, published)
    return seqs


async def apublish(
    channel: str,
    event_type: str,
    data: Any,
    *,
    encoder: type[json.JSONEncoder] = DjangoJSONEncoder,
) -> int:
    """``publish()`` for async code; runs in the calling request's database thread."""
    return await sync_to_async(publish)(channel, event_type, data, encoder=encoder)


async def apublish_many(
    events: Iterable[tuple[str, str, Any]],
    *,
    encoder: type[json.JSONEncoder] = DjangoJSONEncoder,
) -> list[int]:
    """``publish_many()`` for async code; runs in the calling request's database thread."""
    # Materialise first: a generator must not be consumed in another thread.
    return await sync_to_async(publish_many)(list(events), encoder=encoder)
