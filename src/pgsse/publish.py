"""``publish()`` and ``apublish()``: append an event to the log and notify listeners.

Both run on Django's connection for ``PGSSE["DATABASE"]``, so they join the caller's
transaction: inside ``transaction.atomic()`` the event is delivered if and only if the
transaction commits (PostgreSQL sends NOTIFY at commit, and the log row commits with it).

Keep publishing transactions short: the channel's row stays locked until commit (that is
what makes seqs commit-ordered) and PostgreSQL serialises the commits of all notifying
transactions.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections

from pgsse import log
from pgsse.channels import pg_channel_name, validate_channel
from pgsse.conf import get_settings
from pgsse.position import RESET_EVENT
from pgsse.sse import FIELD_FORBIDDEN

__all__ = ["InvalidEvent", "apublish", "publish"]

#: Longest event type, in characters.
MAX_EVENT_TYPE_LENGTH = 100


class InvalidEvent(ValueError):
    """An event that cannot be published; the message says why."""


def _check_event_type(event_type: object) -> str:
    if not isinstance(event_type, str) or not event_type:
        raise InvalidEvent("event type must be a non-empty string")
    if len(event_type) > MAX_EVENT_TYPE_LENGTH:
        raise InvalidEvent(f"event type is longer than {MAX_EVENT_TYPE_LENGTH} characters")
    if any(char in event_type for char in (*FIELD_FORBIDDEN, "\t")):
        raise InvalidEvent("event type must not contain CR, LF, NUL or tab")
    if event_type == RESET_EVENT:
        raise InvalidEvent(f"{RESET_EVENT!r} is the event type streams send themselves")
    return event_type


def publish(channel: str, event_type: str, data: Any) -> int:
    """Append an event to ``channel``'s log and notify every process; return its seq.

    ``data`` is any JSON-serialisable value; subscribers receive its JSON text.
    Raises :class:`~pgsse.channels.InvalidChannel`, :class:`InvalidEvent`, or
    :class:`TypeError` / :class:`ValueError` for data JSON cannot encode (objects, NaN).
    """
    validate_channel(channel)
    _check_event_type(event_type)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    params = {
        "channel": channel,
        "type": event_type,
        "data": text,
        "pg_channel": pg_channel_name(channel),
        "tail": log.notify_tail(channel, event_type, text),
    }
    with connections[get_settings().DATABASE].cursor() as cursor:
        cursor.execute(log.APPEND_SQL, params)
        seq: int = cursor.fetchone()[0]
    return seq


async def apublish(channel: str, event_type: str, data: Any) -> int:
    """``publish()`` for async code; runs in the calling request's database thread."""
    return await sync_to_async(publish)(channel, event_type, data)
