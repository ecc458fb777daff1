"""``publish()``, ``publish_many()`` and their async twins: append events to the log; the
listeners are woken once the events are committed.

All of them run on Django's connection for ``PGSSE["DATABASE"]``, so they join the caller's
transaction: inside ``transaction.atomic()`` the events are delivered if and only if the
transaction commits.

Publishing takes no lock while the caller's transaction runs: events are staged and get
their seqs at COMMIT, where the transaction locks its channels in one sorted sweep (see
:mod:`pgsse.log`). Any number of transactions may publish to any channels in any order
without deadlocking each other. After the commit, this process's notifier wakes every
listener (:mod:`pgsse.notifier`), coalescing the commits of all its threads.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from pgsse import log
from pgsse.channels import ChannelPurged, pg_channel_name, validate_channel
from pgsse.conf import get_settings, require_installed
from pgsse.connection import server_bound_cursor
from pgsse.log import MAX_EVENT_TYPE_LENGTH, MAX_KEY_LENGTH
from pgsse.notifier import Committed, get_notifier
from pgsse.stats import publish_counters

__all__ = [
    "MAX_EVENT_TYPE_LENGTH",
    "MAX_KEY_LENGTH",
    "InvalidEvent",
    "PublishedEvent",
    "append",
    "apublish",
    "apublish_many",
    "publish",
    "publish_many",
]


logger = logging.getLogger("pgsse.publish")


class InvalidEvent(ValueError):
    """An event that cannot be published; the message says why."""


@dataclass(frozen=True, slots=True)
class PublishedEvent:
    """One event as ``publish()`` appended it: ``text`` is the JSON its subscribers get.

    ``seq`` is None until its transaction commits (it is assigned then), except for an
    event published in autocommit, sequenced at once. ``id`` is its row in the log.
    """

    channel: str
    event_type: str
    text: str
    key: str | None
    id: int
    seq: int | None


#: Called with the database alias and the events of every successful publish, before
#: commit. ``pgsse.testing.capture_events()`` adds itself here; nothing else does.
publish_observers: list[Callable[[str, Sequence[PublishedEvent]], None]] = []

#: An event checked and encoded: (channel, event type, JSON text, key).
_Checked = tuple[str, str, str, str | None]

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


def _check(
    channel: object,
    event_type: object,
    data: Any,
    key: object,
    encoder: type[json.JSONEncoder],
) -> _Checked:
    name = validate_channel(channel)
    problem = log.event_type_problem(event_type)
    if problem is not None:
        raise InvalidEvent(problem)
    assert isinstance(event_type, str)
    if key is not None:
        if not isinstance(key, str) or not key:
            raise InvalidEvent(f"key must be a non-empty string or None, not {key!r}")
        if len(key) > MAX_KEY_LENGTH or "\x00" in key:
            raise InvalidEvent(f"key must be at most {MAX_KEY_LENGTH} characters, without NUL")
    text = _encoder(encoder).encode(data)
    largest = get_settings().largest_event
    if len(text) > largest // 4 and len(text.encode()) > largest:
        raise InvalidEvent(
            f"event data is {len(text.encode())} bytes of JSON; the limit is {largest}"
            " (PGSSE['MAX_EVENT_BYTES']): publish a reference and let clients fetch the rest"
        )
    return name, event_type, text, key


@functools.cache
def _default_encoder() -> json.JSONEncoder:
    return _make_encoder(DjangoJSONEncoder)


def _make_encoder(encoder: type[json.JSONEncoder]) -> json.JSONEncoder:
    # Compact, non-ASCII as it is: more events fit inline in a NOTIFY payload.
    return encoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _encoder(encoder: type[json.JSONEncoder]) -> json.JSONEncoder:
    """An instance of ``encoder``: Django's (stateless) is made once, another class for
    each event, as ``json.dumps(cls=...)`` would."""
    if encoder is DjangoJSONEncoder:
        return _default_encoder()
    return _make_encoder(encoder)


@_counted
def publish(
    channel: str,
    event_type: str,
    data: Any,
    *,
    key: str | None = None,
    encoder: type[json.JSONEncoder] = DjangoJSONEncoder,
) -> None:
    """Append an event to ``channel``'s log; every process is notified once it commits.

    ``data`` is encoded to JSON with ``encoder`` (Django's ``DjangoJSONEncoder`` by
    default: datetimes, dates, times, durations, ``Decimal``, ``UUID`` and lazy
    translations become strings); subscribers receive the JSON text. ``key`` names what
    the event is about (``"message:42"``), so that :func:`pgsse.redact` can erase it.
    Raises :class:`~pgsse.channels.InvalidChannel` (:class:`~pgsse.ChannelPurged` for a
    purged channel), :class:`InvalidEvent`, or :class:`TypeError` / :class:`ValueError`
    for data the encoder cannot encode (NaN).
    """
    require_installed()
    append([_check(channel, event_type, data, key, encoder)])


def _checked_events(
    events: Iterable[tuple[Any, ...]], encoder: type[json.JSONEncoder]
) -> list[_Checked]:
    checked = []
    for index, event in enumerate(events):
        if not isinstance(event, tuple | list) or len(event) not in (3, 4):
            raise InvalidEvent(
                f"event {index} is {event!r}; publish_many() takes"
                " (channel, event_type, data) or (channel, event_type, data, key) tuples"
            )
        channel, event_type, data, *key = event
        checked.append(_check(channel, event_type, data, key[0] if key else None, encoder))
    return checked


@_counted
def publish_many(
    events: Iterable[tuple[Any, ...]],
    *,
    encoder: type[json.JSONEncoder] = DjangoJSONEncoder,
) -> None:
    """Publish several ``(channel, event_type, data)`` or ``(channel, event_type, data,
    key)`` events in the caller's transaction (in one of their own outside ``atomic()``).

    Events of one channel get consecutive seqs in the order given. Every event is checked
    and encoded before the database is touched: one bad event publishes none.
    """
    require_installed()
    checked = _checked_events(events, encoder)
    if checked:
        append(checked)


def append(checked: Sequence[_Checked], *, internal: bool = False) -> list[PublishedEvent]:
    """Append checked events in the caller's transaction (or one of their own), and have
    them notified once committed. ``internal``: pgsse's own channels (close requests),
    which ``capture_events()`` does not record."""
    alias = get_settings().DATABASE
    connection = connections[alias]
    # Manual transaction management (autocommit off outside atomic()): Django cannot tell
    # us of the commit, so the transaction itself notifies.
    manual = not connection.in_atomic_block and not connection.get_autocommit()
    notify_inside = get_settings().NOTIFY == "in_transaction" or manual
    if connection.in_atomic_block or manual:
        published = _stage(connection, checked, notify_inside)
    elif len(checked) == 1:
        published = _append_at_once(connection, checked[0], notify_inside)
    else:
        with transaction.atomic(using=alias):
            published = _stage(connection, checked, notify_inside)
    publish_counters.appended(len(published))
    if publish_observers and not internal:
        for observer in tuple(publish_observers):
            observer(alias, published)
    return published


def _append_at_once(
    connection: BaseDatabaseWrapper, event: _Checked, notify_inside: bool
) -> list[PublishedEvent]:
    """Autocommit: the event is sequenced by its own one-statement transaction."""
    channel, event_type, text, key = event
    params = {"channel": channel, "type": event_type, "data": text, "key": key}
    with server_bound_cursor(connection) as cursor:
        if notify_inside:
            params["pg_channel"] = pg_channel_name(channel)
            params["tail"] = log.notify_tail(channel, event_type, text)
            cursor.execute(log.APPEND_NOTIFY_SQL, params)
        else:
            cursor.execute(log.APPEND_SQL, params)
        row = cursor.fetchone()
    if row is None:
        raise ChannelPurged(channel)
    published = [PublishedEvent(channel, event_type, text, key, row[0], row[1])]
    if not notify_inside:
        _notify_after_commit(connection, published, stamp=row[2])
    return published


def _stage(
    connection: BaseDatabaseWrapper, checked: Sequence[_Checked], notify_inside: bool
) -> list[PublishedEvent]:
    """In a transaction: stage the events; the commit trigger sequences them."""
    channels = sorted({event[0] for event in checked})
    with server_bound_cursor(connection) as cursor:
        if len(checked) == 1:
            channel, event_type, text, key = checked[0]
            params = {"channel": channel, "type": event_type, "data": text, "key": key}
            cursor.execute(log.STAGE_SQL, params)
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                raise ChannelPurged(channel)
        else:
            cursor.execute(log.PURGED_SQL, (channels,))
            purged = cursor.fetchone()
            if purged is not None:
                raise ChannelPurged(purged[0])
            columns = [list(column) for column in zip(*checked, strict=True)]
            names = ("channels", "types", "datas", "keys")
            cursor.execute(log.STAGE_MANY_SQL, dict(zip(names, columns, strict=True)))
            # Ids come from one sequence in row order: sorted, they follow the events.
            ids = sorted(row[0] for row in cursor.fetchall())
        if notify_inside:
            wakes = [pg_channel_name(name) for name in channels]
            cursor.execute(log.WAKE_SQL, (wakes, [log.wake_payload(name) for name in channels]))
    published = [
        PublishedEvent(channel, event_type, text, key, row_id, None)
        for (channel, event_type, text, key), row_id in zip(checked, ids, strict=True)
    ]
    if not notify_inside:
        _notify_after_commit(connection, published)
    return published


def _notify_after_commit(
    connection: BaseDatabaseWrapper,
    published: Sequence[PublishedEvent],
    stamp: int | None = None,
) -> None:
    committed = [
        Committed(
            event.id,
            event.channel,
            pg_channel_name(event.channel),
            log.notify_tail(event.channel, event.event_type, event.text),
            event.seq,
            stamp,
        )
        for event in published
    ]
    if stamp is None:
        # At commit inside atomic(), never if rolled back (with a savepoint too). robust: a
        # failure here must not stop the application's callbacks.
        connection.on_commit(functools.partial(get_notifier().send, committed), robust=True)
        return
    # Sequenced by its own statement (stamped), so committed already: handed over at
    # once. As robust as on_commit's would be: the event is in the log, and a publish
    # that raised now would be published again by a caller who retries.
    try:
        get_notifier().send(committed)
    except Exception:
        logger.exception("could not hand %s committed events to the notifier", len(committed))


async def apublish(
    channel: str,
    event_type: str,
    data: Any,
    *,
    key: str | None = None,
    encoder: type[json.JSONEncoder] = DjangoJSONEncoder,
) -> None:
    """``publish()`` for async code; runs in the calling request's database thread."""
    await sync_to_async(publish)(channel, event_type, data, key=key, encoder=encoder)


async def apublish_many(
    events: Iterable[tuple[Any, ...]],
    *,
    encoder: type[json.JSONEncoder] = DjangoJSONEncoder,
) -> None:
    """``publish_many()`` for async code; runs in the calling request's database thread."""
    # Materialise first: a generator must not be consumed in another thread.
    await sync_to_async(publish_many)(list(events), encoder=encoder)
