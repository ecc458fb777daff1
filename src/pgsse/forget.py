"""A log that can forget: redact events, purge channels.

Replay is a read of history, so history must be able to forget what it should no longer
tell: a deleted message, an edit's older text, a room that no longer exists.

- :func:`redact` erases what events said and keeps their seqs: a replay across them stays
  gap-free and delivers each as an id-only frame (the client's position moves past it and
  no event fires). Pick the events by the ``key`` they were published with
  (``publish(..., key="message:42")``) or by seq.
- :func:`purge_channel` deletes every event of a channel and leaves a tombstone: the name
  is never published to again (:class:`~pgsse.ChannelPurged`), so a client's old position
  can never resume into something else that reused the name. Open streams of the channel
  end; new ones are refused.

Both join the caller's transaction and take effect when it commits. Every hub hears of
them on ``pgsse:control`` and drops what it had read of the channel and kept for other
streams (a reconnect storm shares reads for a few seconds).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from asgiref.sync import sync_to_async
from django.db import connections

from pgsse import log
from pgsse.channels import validate_channel
from pgsse.closing import CONTROL_CHANNEL, close_streams
from pgsse.conf import get_settings, require_installed
from pgsse.publish import InvalidEvent, append

__all__ = [
    "FORGET_EVENT",
    "apurge_channel",
    "aredact",
    "forgotten_channel",
    "purge_channel",
    "redact",
]

#: The control event that tells every hub a channel's history changed.
FORGET_EVENT = "forget"


def redact(channel: str, *, key: str | None = None, seqs: Iterable[int] | None = None) -> int:
    """Erase the events of ``channel`` published with ``key``, or those with the given
    ``seqs`` (exactly one of the two); return how many were erased.

    An erased event keeps its seq and loses its type and data, in the log and in every
    replay from then on. What live streams delivered before is theirs. Events staged
    earlier in the same transaction are erased too.
    """
    validate_channel(channel)
    if (key is None) == (seqs is None):
        raise TypeError("redact() needs key= or seqs=, not both")
    if key is not None and (not isinstance(key, str) or not key):
        raise InvalidEvent(f"key must be a non-empty string, not {key!r}")
    require_installed()
    with connections[get_settings().DATABASE].cursor() as cursor:
        if key is not None:
            cursor.execute(log.REDACT_KEY_SQL, {"channel": channel, "key": key})
        else:
            wanted = sorted({_seq(seq) for seq in seqs or ()})
            cursor.execute(log.REDACT_SEQS_SQL, {"channel": channel, "seqs": wanted})
        erased: int = cursor.rowcount
    if erased:
        _announce(channel)
    return erased


def purge_channel(channel: str) -> int:
    """Delete every event of ``channel``, end its open streams, and never let its name be
    published to again; return how many events were deleted. Idempotent."""
    validate_channel(channel)
    require_installed()
    with connections[get_settings().DATABASE].cursor() as cursor:
        cursor.execute(log.PURGE_CHANNEL_SQL, {"channel": channel})
        cursor.execute(log.PURGE_EVENTS_SQL, {"channel": channel})
        deleted: int = cursor.rowcount
    close_streams(channel=channel)
    _announce(channel)
    return deleted


async def aredact(
    channel: str, *, key: str | None = None, seqs: Iterable[int] | None = None
) -> int:
    """:func:`redact` for async code."""
    wanted = None if seqs is None else list(seqs)
    return await sync_to_async(redact)(channel, key=key, seqs=wanted)


async def apurge_channel(channel: str) -> int:
    """:func:`purge_channel` for async code."""
    return await sync_to_async(purge_channel)(channel)


def forgotten_channel(data: str) -> str:
    """The channel a ``forget`` control event names; :class:`ValueError` if malformed."""
    channel = json.loads(data)["channel"]
    if not isinstance(channel, str):
        raise ValueError("a forget event names a channel")
    return channel


def _seq(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidEvent(f"seqs are integers >= 1, not {value!r}")
    return value


def _announce(channel: str) -> None:
    data = json.dumps({"channel": channel}, ensure_ascii=False, separators=(",", ":"))
    append([(CONTROL_CHANNEL, FORGET_EVENT, data, None)], internal=True)
