"""The event log: append with a per-channel seq, read since a position, prune.

Every statement here is parameterized. Appends run on Django's connection, so they join
the caller's transaction; reads run on the hub's own async connections.

Why the seq is gap-free and commit-ordered: the append upserts the channel's row in
``pgsse_channel`` and increments ``last_seq`` there. That row stays locked until the
transaction ends, so a second publisher on the same channel waits, then reads the
committed value. Seqs therefore commit in order, and a rolled-back append gives its seq
back. (A bigserial id gives neither: see docs/guarantees.md.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pgsse import sse
from pgsse.position import MAX_SEQ, RESET_EVENT, SEQ_DIGITS, fingerprint

if TYPE_CHECKING:
    from psycopg import AsyncConnection

__all__ = [
    "EVENT_TYPE_FORBIDDEN",
    "MAX_EVENT_TYPE_LENGTH",
    "MAX_SEQ",
    "NOTIFY_PAYLOAD_LIMIT",
    "PAYLOAD_HEAD_MAX",
    "SEQ_DIGITS",
    "ChannelHead",
    "LoggedEvent",
    "append_params",
    "contiguous_prefix",
    "continues",
    "event_type_problem",
    "notify_tail",
    "parse_payload",
    "read_batch",
    "read_heads",
    "read_heads_sync",
]

#: PostgreSQL refuses a NOTIFY payload of 8000 bytes or more.
NOTIFY_PAYLOAD_LIMIT = 8000

#: The longest head of a payload: ``<seq>@<created_at in microseconds>``, the stamp a
#: bigint (with its sign, should a clock ever read before 1970).
PAYLOAD_HEAD_MAX = SEQ_DIGITS + 1 + len(str(-(2**63)))

#: Longest event type, in characters.
MAX_EVENT_TYPE_LENGTH = 100
#: What an event type may not contain: CR, LF and NUL would break the SSE frame, and a tab
#: would end the type early in the notification payload, whose fields tabs separate.
EVENT_TYPE_FORBIDDEN = (*sse.FIELD_FORBIDDEN, "\t")

# One round trip: take the channel's next seq (locking its row until commit), store the
# event, and queue the notification. The payload is "<seq>@<created_at>" (microseconds
# since the epoch: the hub measures delivery lag with it) followed by ``tail``: either the
# whole event ("\t<channel>\t<type>\t<data>") or, for large events, a reference
# ("\t<channel>") that makes the hub read the row from the log.
APPEND_SQL = """
WITH next AS (
    INSERT INTO pgsse_channel AS c (name, last_seq, pruned_seq) VALUES (%(channel)s, 1, 0)
    ON CONFLICT (name) DO UPDATE SET last_seq = c.last_seq + 1
    RETURNING c.last_seq
), appended AS (
    INSERT INTO pgsse_event (channel, seq, type, data, created_at)
    SELECT %(channel)s, next.last_seq, %(type)s, %(data)s, now() FROM next
    RETURNING seq, created_at
)
SELECT seq, pg_notify(%(pg_channel)s, seq::text || '@'
    || (extract(epoch FROM created_at) * 1000000)::bigint::text || %(tail)s)
FROM appended
"""

# publish_many(), step one: reserve each channel's next ``count`` seqs. The rows are
# upserted in one fixed order (channel names by code point), so two transactions that
# publish to the same channels take their row locks in the same order and cannot
# deadlock, whatever order their callers listed the events in.
RESERVE_SQL = """
INSERT INTO pgsse_channel AS c (name, last_seq, pruned_seq)
SELECT name, count, 0 FROM unnest(%(names)s::text[], %(counts)s::bigint[]) AS wanted(name, count)
ORDER BY name COLLATE "C"
ON CONFLICT (name) DO UPDATE SET last_seq = c.last_seq + excluded.last_seq
RETURNING c.name, c.last_seq
"""

# publish_many(), step two, once per event (pipelined): store it under its reserved seq
# and queue its notification, with the same payload as APPEND_SQL.
APPEND_RESERVED_SQL = """
WITH appended AS (
    INSERT INTO pgsse_event (channel, seq, type, data, created_at)
    VALUES (%(channel)s, %(seq)s, %(type)s, %(data)s, now())
    RETURNING seq, created_at
)
SELECT pg_notify(%(pg_channel)s, seq::text || '@'
    || (extract(epoch FROM created_at) * 1000000)::bigint::text || %(tail)s)
FROM appended
"""

# The events after a seq, at most ``limit`` of them and about ``budget`` bytes of data (at
# least one event, however large): a batch is bounded in memory whatever the events hold.
# The running total is computed on the limited rows, in seq order, as the index yields them.
READ_BATCH_SQL = """
SELECT seq, type, data, total, extract(epoch FROM created_at)::float8 FROM (
    SELECT seq, type, data, created_at, sum(octet_length(data)) OVER (ORDER BY seq) AS total
    FROM pgsse_event WHERE channel = %(channel)s AND seq > %(after)s
    ORDER BY seq LIMIT %(limit)s
) AS batch
WHERE total - octet_length(data) < %(budget)s
ORDER BY seq
"""

HEADS_SQL = "SELECT name, last_seq, pruned_seq FROM pgsse_channel WHERE name = ANY(%s)"

_SEQ = rf"[1-9][0-9]{{0,{SEQ_DIGITS - 1}}}"
# "<seq>" (payloads written before the stamp was added) or "<seq>@<microseconds>".
_HEAD = re.compile(rf"(?P<seq>{_SEQ})(?:@(?P<at>0|-?{_SEQ}))?")


@dataclass(slots=True)
class LoggedEvent:
    """One event of a channel, as read from a notification or from the log.

    Its SSE bytes are encoded once, on first use, and shared by every stream.
    """

    channel: str
    seq: int
    type: str
    data: str
    #: When its transaction stamped it (PostgreSQL's ``now()``, seconds since the epoch),
    #: if known: the hub's delivery-lag histogram reads it.
    created_at: float | None = field(default=None, compare=False)
    _body: bytes | None = field(default=None, repr=False, compare=False)
    _alone: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def body(self) -> bytes:
        """The ``event:`` and ``data:`` lines; streams put their own ``id:`` in front."""
        if self._body is None:
            self._body = sse.encode_event_body(self.type, self.data)
        return self._body

    @property
    def frame_alone(self) -> bytes:
        """The whole frame for a stream that follows this channel only."""
        if self._alone is None:
            event_id = f"{fingerprint((self.channel,))}:{self.seq}"
            self._alone = sse.encode_id(event_id) + self.body
        return self._alone


@dataclass(frozen=True, slots=True)
class ChannelHead:
    """A channel's newest seq and the newest seq pruned from the log."""

    last_seq: int
    pruned_seq: int


def event_type_problem(event_type: object) -> str | None:
    """Why ``event_type`` cannot be logged and notified, or None if it can.

    One rule for both ends: :func:`notify_tail` (and so ``publish()``) refuses what
    :func:`parse_payload` would refuse to read back.
    """
    if not isinstance(event_type, str) or not event_type:
        return "event type must be a non-empty string"
    if len(event_type) > MAX_EVENT_TYPE_LENGTH:
        return f"event type is longer than {MAX_EVENT_TYPE_LENGTH} characters"
    if any(char in event_type for char in EVENT_TYPE_FORBIDDEN):
        return "event type must not contain CR, LF, NUL or tab"
    if event_type == RESET_EVENT:
        return f"{RESET_EVENT!r} is the event type streams send themselves"
    return None


def append_params(channel: str, event_type: str, text: str) -> dict[str, Any]:
    """The parameters of :data:`APPEND_SQL` for one event (``text``: its JSON)."""
    from pgsse.channels import pg_channel_name

    return {
        "channel": channel,
        "type": event_type,
        "data": text,
        "pg_channel": pg_channel_name(channel),
        "tail": notify_tail(channel, event_type, text),
    }


def notify_tail(channel: str, event_type: str, data: str) -> str:
    """What follows the seq in the notification payload: the event, or a reference to it.

    Raises :class:`ValueError` for an event type the payload cannot carry.
    """
    problem = event_type_problem(event_type)
    if problem is not None:
        raise ValueError(problem)
    inline = f"\t{channel}\t{event_type}\t{data}"
    if len(inline.encode()) + PAYLOAD_HEAD_MAX < NOTIFY_PAYLOAD_LIMIT:
        return inline
    return f"\t{channel}"


def parse_payload(payload: str) -> tuple[str, int, tuple[str, str] | None, float | None]:
    """Read a notification payload: ``(channel, seq, (type, data) or None if by reference,
    created_at in seconds since the epoch or None if the payload has no stamp)``.

    Raises :class:`ValueError` for a payload pgsse did not write.
    """
    parts = payload.split("\t", 3)
    head = _HEAD.fullmatch(parts[0])
    if len(parts) not in (2, 4) or head is None or not parts[1]:
        raise ValueError(f"not a pgsse notification payload: {payload[:80]!r}")
    seq = int(head["seq"])
    if seq > MAX_SEQ:
        raise ValueError(f"not a pgsse seq: {parts[0]}")
    created_at = None
    if head["at"] is not None:
        micros = int(head["at"])
        if not -(2**63) <= micros <= MAX_SEQ:
            raise ValueError(f"not a pgsse timestamp: {parts[0]}")
        created_at = micros / 1_000_000
    if len(parts) == 2:
        return parts[1], seq, None, created_at
    event_type = parts[2]
    # What publish() would never send: a type that could break the SSE frame, or a reset.
    if event_type_problem(event_type) is not None:
        raise ValueError(f"not a pgsse event type: {event_type[:80]!r}")
    return parts[1], seq, (event_type, parts[3]), created_at


def contiguous_prefix(events: Sequence[LoggedEvent], after: int) -> Sequence[LoggedEvent]:
    """The leading events whose seqs follow ``after`` one by one."""
    for index, event in enumerate(events):
        if event.seq != after + 1 + index:
            return events[:index]
    return events


def continues(events: Sequence[LoggedEvent], after: int) -> bool:
    """Whether ``events`` are exactly the seqs right after ``after``, with no hole."""
    return bool(events) and len(contiguous_prefix(events, after)) == len(events)


async def read_batch(
    conn: AsyncConnection[Any], channel: str, after: int, limit: int, budget: int
) -> tuple[list[LoggedEvent], bool]:
    """The events of ``channel`` after seq ``after``, oldest first, bounded by ``limit``
    events and about ``budget`` bytes; and whether more may follow (the batch was cut)."""
    params = {"channel": channel, "after": after, "limit": limit, "budget": budget}
    cursor = await conn.execute(READ_BATCH_SQL, params)
    rows = await cursor.fetchall()
    cut = len(rows) >= limit or bool(rows and rows[-1][3] >= budget)
    events = [LoggedEvent(channel, seq, type_, data, at) for seq, type_, data, _, at in rows]
    return events, cut


async def read_heads(conn: AsyncConnection[Any], channels: Sequence[str]) -> dict[str, ChannelHead]:
    """The head of every channel in ``channels``; a channel never published to is at 0."""
    cursor = await conn.execute(HEADS_SQL, (list(channels),))
    found = {name: ChannelHead(last, pruned) for name, last, pruned in await cursor.fetchall()}
    return {name: found.get(name, ChannelHead(0, 0)) for name in channels}


def read_heads_sync(channels: Sequence[str], using: str) -> dict[str, ChannelHead]:
    """:func:`read_heads` on Django's connection ``using`` (joins its transaction)."""
    from django.db import connections

    with connections[using].cursor() as cursor:
        cursor.execute(HEADS_SQL, (list(channels),))
        found = {name: ChannelHead(last, pruned) for name, last, pruned in cursor.fetchall()}
    return {name: found.get(name, ChannelHead(0, 0)) for name in channels}
