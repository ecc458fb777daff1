"""The event log: stage and sequence events, read since a position, forget, prune.

Every statement here is parameterized. Appends run on Django's connection, so they join
the caller's transaction; reads run on the hub's own async connections.

Why seqs are gap-free and commit-ordered, whatever order transactions publish in: a
transaction never takes a channel's lock while it runs. Its events are *staged* (inserted
with ``seq`` NULL, invisible to everyone else until commit), and a deferred constraint
trigger (``pgsse_sequence_staged``, created by migration 0003) fires at COMMIT: its first
firing upserts every channel the transaction staged events for, in one statement, in
code-point order of their names, adding the transaction's count to each ``last_seq``,
and gives the staged events the seqs so reserved. The channel rows stay locked until the
commit completes, so a second committer of the same channel waits, then reads the
committed value: seqs commit in order, a rolled-back transaction never took any, and since
every transaction takes its channel locks in the same order, in one place, at the very
end, two publishing transactions can never wait for each other in a cycle. (A bigserial
id gives neither property: see docs/guarantees.md.)

A publish in autocommit (no transaction open) is one statement that sequences the event
at once: its channel's row lock lasts for that statement's own commit.

Notifications are sent after commit by :mod:`pgsse.notifier` (or, with
``PGSSE["NOTIFY"] = "in_transaction"``, queued by the publishing transaction itself).
"""

from __future__ import annotations

import functools
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
    "MAX_KEY_LENGTH",
    "MAX_SEQ",
    "NOTIFY_PAYLOAD_LIMIT",
    "PAYLOAD_HEAD_MAX",
    "SEQ_DIGITS",
    "UNKNOWN_SEQ",
    "ChannelHead",
    "LoggedEvent",
    "contiguous_prefix",
    "continues",
    "event_type_problem",
    "notify_tail",
    "parse_payload",
    "read_batch",
    "read_heads",
    "read_heads_sync",
    "wake_payload",
]

#: PostgreSQL refuses a NOTIFY payload of 8000 bytes or more.
NOTIFY_PAYLOAD_LIMIT = 8000

#: The longest head of a payload: ``<seq>@<created_at in microseconds>``, the stamp a
#: bigint (with its sign, should a clock ever read before 1970).
PAYLOAD_HEAD_MAX = SEQ_DIGITS + 1 + len(str(-(2**63)))

#: Longest event type, in characters.
MAX_EVENT_TYPE_LENGTH = 100
#: Longest key (``publish(..., key=...)``), in characters.
MAX_KEY_LENGTH = 200
#: What an event type may not contain: CR, LF and NUL would break the SSE frame, and a tab
#: would end the type early in the notification payload, whose fields tabs separate.
EVENT_TYPE_FORBIDDEN = (*sse.FIELD_FORBIDDEN, "\t")

#: The seq a wake-up notification names: "this channel has new events, read its head".
UNKNOWN_SEQ = 0

# Stage one event in the caller's transaction: no seq yet (the commit trigger gives it
# one), no lock taken. A purged channel takes no events: no row comes back.
STAGE_SQL = """
INSERT INTO pgsse_event (channel, seq, type, data, key, created_at)
SELECT %(channel)s, NULL, %(type)s, %(data)s, %(key)s, now()
WHERE NOT EXISTS (
    SELECT 1 FROM pgsse_channel WHERE name = %(channel)s AND purged_at IS NOT NULL
)
RETURNING id
"""

# Stage several events, in the order given (ids, and so seqs within a channel, follow it).
# Arrays go in binary (``%b``): psycopg writes a text array by escaping every quote and
# backslash of every element in Python, which for JSON costs more than the rest of the
# statement; a binary array is the strings as they are, each after its length.
STAGE_MANY_SQL = """
INSERT INTO pgsse_event (channel, seq, type, data, key, created_at)
SELECT e.channel, NULL, e.type, e.data, e.key, now()
FROM unnest(%(channels)b::text[], %(types)b::text[], %(datas)b::text[], %(keys)b::text[])
     WITH ORDINALITY AS e(channel, type, data, key, n)
ORDER BY e.n
RETURNING id
"""

PURGED_SQL = "SELECT name FROM pgsse_channel WHERE name = ANY(%s) AND purged_at IS NOT NULL"

# Autocommit: take the channel's next seq and store the event in one statement, which is
# its own transaction (the row lock ends with it). Nothing comes back for a purged channel.
APPEND_SQL = """
WITH next AS (
    INSERT INTO pgsse_channel AS c (name, last_seq, pruned_seq) VALUES (%(channel)s, 1, 0)
    ON CONFLICT (name) DO UPDATE SET last_seq = c.last_seq + 1 WHERE c.purged_at IS NULL
    RETURNING c.last_seq
)
INSERT INTO pgsse_event (channel, seq, type, data, key, created_at)
SELECT %(channel)s, next.last_seq, %(type)s, %(data)s, %(key)s, now() FROM next
RETURNING id, seq, (extract(epoch FROM created_at) * 1000000)::bigint
"""

# The same, notifying in the same transaction (``PGSSE["NOTIFY"] = "in_transaction"``).
# The payload is "<seq>@<created_at>" (microseconds since the epoch: the hub measures
# delivery lag with it) followed by ``tail``: either the whole event
# ("\t<channel>\t<type>\t<data>") or, for large events, a reference ("\t<channel>").
APPEND_NOTIFY_SQL = """
WITH next AS (
    INSERT INTO pgsse_channel AS c (name, last_seq, pruned_seq) VALUES (%(channel)s, 1, 0)
    ON CONFLICT (name) DO UPDATE SET last_seq = c.last_seq + 1 WHERE c.purged_at IS NULL
    RETURNING c.last_seq
), appended AS (
    INSERT INTO pgsse_event (channel, seq, type, data, key, created_at)
    SELECT %(channel)s, next.last_seq, %(type)s, %(data)s, %(key)s, now() FROM next
    RETURNING id, seq, created_at
)
SELECT id, seq, pg_notify(%(pg_channel)s, seq::text || '@'
    || (extract(epoch FROM created_at) * 1000000)::bigint::text || %(tail)s)
FROM appended
"""

# ``PGSSE["NOTIFY"] = "in_transaction"`` for staged events, whose seqs are not known before
# commit: one wake-up per channel (PostgreSQL folds identical notifications of one
# transaction into one), sent when the transaction commits.
WAKE_SQL = "SELECT pg_notify(name, payload) FROM unnest(%b::text[], %b::text[]) AS w(name, payload)"

# After commit, for the notifier: the seqs and stamps the events got. A redacted event's
# notification refers to the log instead of carrying what was erased.
COMMITTED_SQL = """
SELECT id, seq, (extract(epoch FROM created_at) * 1000000)::bigint, redacted_at IS NOT NULL
FROM pgsse_event WHERE id = ANY(%b) AND seq IS NOT NULL
"""

# The notifier's one statement per window: the notifications in array order (a function
# scan yields its rows in order, and PostgreSQL delivers one transaction's notifications
# in the order they were sent). Binary arrays, as in STAGE_MANY_SQL: escaping the payloads
# for a text array took four fifths of the notifier's time.
NOTIFY_SQL = (
    "SELECT count(pg_notify(n.name, n.payload))"
    " FROM unnest(%b::text[], %b::text[]) AS n(name, payload)"
)

# Redaction keeps the seq (replay stays gap-free) and erases what the event said.
REDACT_KEY_SQL = """
UPDATE pgsse_event SET type = '', data = '', redacted_at = now()
WHERE channel = %(channel)s AND key = %(key)s AND redacted_at IS NULL
"""
REDACT_SEQS_SQL = """
UPDATE pgsse_event SET type = '', data = '', redacted_at = now()
WHERE channel = %(channel)s AND seq = ANY(%(seqs)s) AND redacted_at IS NULL
"""

# Purging leaves a tombstone: the name stays taken, everything it carried is gone.
PURGE_CHANNEL_SQL = """
INSERT INTO pgsse_channel AS c (name, last_seq, pruned_seq, purged_at)
VALUES (%(channel)s, 0, 0, now())
ON CONFLICT (name) DO UPDATE SET pruned_seq = c.last_seq, purged_at = coalesce(c.purged_at, now())
"""
PURGE_EVENTS_SQL = "DELETE FROM pgsse_event WHERE channel = %(channel)s"

# The events after a seq, at most ``limit`` of them and about ``budget`` bytes of data (at
# least one event, however large): a batch is bounded in memory whatever the events hold.
# The running total is computed on the limited rows, in seq order, as the index yields them.
READ_BATCH_SQL = """
SELECT seq, type, data, total, extract(epoch FROM created_at)::float8, redacted FROM (
    SELECT seq, type, data, created_at, redacted_at IS NOT NULL AS redacted,
           sum(octet_length(data)) OVER (ORDER BY seq) AS total
    FROM pgsse_event WHERE channel = %(channel)s AND seq > %(after)s
    ORDER BY seq LIMIT %(limit)s
) AS batch
WHERE total - octet_length(data) < %(budget)s
ORDER BY seq
"""

HEADS_SQL = (
    "SELECT name, last_seq, pruned_seq, purged_at IS NOT NULL"
    " FROM pgsse_channel WHERE name = ANY(%s)"
)

_SEQ = rf"[1-9][0-9]{{0,{SEQ_DIGITS - 1}}}"
# "<seq>" (payloads written before the stamp was added) or "<seq>@<microseconds>"; seq 0
# (UNKNOWN_SEQ) in a wake-up, which never carries an event.
_HEAD = re.compile(rf"(?P<seq>{_SEQ}|0)(?:@(?P<at>0|-?{_SEQ}))?")


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
    #: Erased by ``pgsse.redact()``: streams send its id and nothing else.
    redacted: bool = False
    _body: bytes | None = field(default=None, repr=False, compare=False)
    _alone: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def body(self) -> bytes:
        """The ``event:`` and ``data:`` lines; streams put their own ``id:`` in front.

        A redacted event's body is the blank line alone: with its ``id:`` in front it is
        an id-only frame, which moves the client's position and fires no event.
        """
        if self._body is None:
            self._body = b"\n" if self.redacted else sse.encode_event_body(self.type, self.data)
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
    """A channel's newest seq, the newest seq pruned from the log, and whether the
    channel was purged (its name is then never published to again)."""

    last_seq: int
    pruned_seq: int
    purged: bool = False


def event_type_problem(event_type: object) -> str | None:
    """Why ``event_type`` cannot be logged and notified, or None if it can.

    One rule for both ends: :func:`notify_tail` (and so ``publish()``) refuses what
    :func:`parse_payload` would refuse to read back.
    """
    if not isinstance(event_type, str) or not event_type:
        return "event type must be a non-empty string"
    return _type_problem(event_type)


# A process publishes a few event types again and again: each is checked once.
@functools.lru_cache(maxsize=1024)
def _type_problem(event_type: str) -> str | None:
    if len(event_type) > MAX_EVENT_TYPE_LENGTH:
        return f"event type is longer than {MAX_EVENT_TYPE_LENGTH} characters"
    if any(char in event_type for char in EVENT_TYPE_FORBIDDEN):
        return "event type must not contain CR, LF, NUL or tab"
    if event_type == RESET_EVENT:
        return f"{RESET_EVENT!r} is the event type streams send themselves"
    return None


def wake_payload(channel: str) -> str:
    """A notification that ``channel`` has new events whose seqs it does not know."""
    return f"{UNKNOWN_SEQ}\t{channel}"


def notify_tail(channel: str, event_type: str, data: str) -> str:
    """What follows the seq in the notification payload: the event, or a reference to it.

    Raises :class:`ValueError` for an event type the payload cannot carry.
    """
    problem = event_type_problem(event_type)
    if problem is not None:
        raise ValueError(problem)
    inline = f"\t{channel}\t{event_type}\t{data}"
    # At most 4 bytes a character: most events fit without encoding them to count.
    if 4 * len(inline) + PAYLOAD_HEAD_MAX < NOTIFY_PAYLOAD_LIMIT:
        return inline
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
    if seq == UNKNOWN_SEQ:
        raise ValueError(f"a pgsse wake-up carries no event: {payload[:80]!r}")
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
    events = [
        LoggedEvent(channel, seq, type_, data, at, redacted)
        for seq, type_, data, _, at, redacted in rows
    ]
    return events, cut


async def read_heads(conn: AsyncConnection[Any], channels: Sequence[str]) -> dict[str, ChannelHead]:
    """The head of every channel in ``channels``; a channel never published to is at 0."""
    cursor = await conn.execute(HEADS_SQL, (list(channels),))
    found = {name: ChannelHead(*head) for name, *head in await cursor.fetchall()}
    return {name: found.get(name, ChannelHead(0, 0)) for name in channels}


def read_heads_sync(channels: Sequence[str], using: str) -> dict[str, ChannelHead]:
    """:func:`read_heads` on Django's connection ``using`` (joins its transaction)."""
    from django.db import connections

    with connections[using].cursor() as cursor:
        cursor.execute(HEADS_SQL, (list(channels),))
        found = {name: ChannelHead(*head) for name, *head in cursor.fetchall()}
    return {name: found.get(name, ChannelHead(0, 0)) for name in channels}
