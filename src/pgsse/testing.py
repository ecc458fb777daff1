"""Helpers for your tests: record the events ``publish()`` committed, and assert on them.

.. code-block:: python

    from django.test import TestCase
    from pgsse.testing import capture_events

    class OrderTests(TestCase):
        def test_a_new_order_is_announced_to_its_customer(self):
            with capture_events() as events:
                order = place_order(customer, items)
            events.assert_published("user:7", "order_created", data={"id": order.id})

An event is recorded once it is committed. Django's ``TestCase`` runs each test inside a
transaction that never commits; there the capture counts as committed what would have
been: an event published outside any ``atomic()`` block of the test's own, or in blocks
that have all ended without an error. It reads Django's own record of pending
``on_commit()`` callbacks to know, the same one ``TestCase.captureOnCommitCallbacks()``
reads, so an ``atomic()`` block rolled back takes its events out of the record too.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from pgsse.publish import PublishedEvent, publish_observers
from pgsse.stream_client import Event, OpenStream, Response, StreamClient

__all__ = [
    "CapturedEvent",
    "CapturedEvents",
    "Event",
    "OpenStream",
    "Response",
    "StreamClient",
    "capture_events",
]

_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class CapturedEvent:
    """One committed event.

    ``data`` is what a subscriber decodes (``JSON.parse(event.data)``): a datetime
    published is an ISO 8601 string here, a tuple a list. ``text`` is the JSON text sent.
    """

    channel: str
    event_type: str
    data: Any
    #: Its seq in the channel, assigned when its transaction commits; None under
    #: ``TestCase``, whose transaction never does (or if its channel was purged since).
    seq: int | None
    text: str

    def __str__(self) -> str:
        seq = "" if self.seq is None else f" #{self.seq}"
        return f"{self.channel!r}{seq} {self.event_type!r} {self.text}"


class _PendingCommit:
    """The ``on_commit()`` callback of one publish call: records its events at commit."""

    def __init__(
        self,
        capture: CapturedEvents,
        connection: BaseDatabaseWrapper,
        events: Sequence[PublishedEvent],
    ) -> None:
        self.capture = capture
        self.connection = connection
        self.events = events
        self.recorded = False

    def __call__(self) -> None:
        self.capture._record(self, committed=True)

    def seqs(self) -> list[int | None]:
        """The seqs the events got at commit (read back after a real commit)."""
        known = [event.seq for event in self.events]
        unknown = [event.id for event in self.events if event.seq is None]
        if not unknown:
            return known
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT id, seq FROM pgsse_event WHERE id = ANY(%s)", (unknown,))
            found = dict(cursor.fetchall())
        return [found.get(event.id) if event.seq is None else event.seq for event in self.events]

    def would_have_committed(self) -> bool:
        """Under ``TestCase``: still pending, and outside every block the test opened."""
        connection: Any = self.connection  # Django's transaction state is not in the stubs
        blocks = connection.atomic_blocks
        if not blocks or not blocks[0]._from_testcase or connection.needs_rollback:
            return False  # a real transaction commits for real, or never
        entry = next((e for e in connection.run_on_commit if e[1] is self), None)
        if entry is None:
            return False  # rolled back with its savepoint
        # atomic_blocks and savepoint_ids line up from the end: the outermost block of a
        # transaction has no savepoint.
        savepoints = connection.savepoint_ids
        offset = len(blocks) - len(savepoints)
        open_by_the_test = {
            savepoints[index - offset]
            for index, block in enumerate(blocks)
            if index >= offset and not block._from_testcase
        }
        return not (entry[0] & open_by_the_test)


class CapturedEvents:
    """The events committed while :func:`capture_events` was open, oldest first."""

    def __init__(self) -> None:
        self._events: list[CapturedEvent] = []
        self._pending: list[_PendingCommit] = []
        self._lock = threading.Lock()
        self._open = True

    # -- recording -------------------------------------------------------------------

    def _observe(self, alias: str, events: Sequence[PublishedEvent]) -> None:
        connection = connections[alias]
        if not connection.in_atomic_block and not connection.get_autocommit():
            return  # manual transaction management: Django cannot tell us of the commit
        commit = _PendingCommit(self, connection, events)
        with self._lock:
            self._pending.append(commit)
        # Runs now in autocommit, at commit inside atomic(), never if rolled back.
        connection.on_commit(commit)

    def _record(self, commit: _PendingCommit, *, committed: bool = False) -> None:
        with self._lock:
            if commit.recorded or not self._open:
                return
            commit.recorded = True
        seqs = commit.seqs() if committed else [event.seq for event in commit.events]
        with self._lock:
            self._pending.remove(commit)
            self._events += [
                CapturedEvent(e.channel, e.event_type, json.loads(e.text), seq, e.text)
                for e, seq in zip(commit.events, seqs, strict=True)
            ]

    def _settle(self) -> None:
        """Record what a ``TestCase`` transaction would have committed by now."""
        with self._lock:
            pending = list(self._pending)
        for commit in pending:
            if commit.would_have_committed():
                self._record(commit)

    def _close(self) -> None:
        self._settle()
        with self._lock:
            self._open = False

    # -- reading ---------------------------------------------------------------------

    @property
    def events(self) -> list[CapturedEvent]:
        """Every event committed so far, in commit order (publish order in a ``TestCase``)."""
        if self._open:
            self._settle()
        with self._lock:
            return list(self._events)

    def __iter__(self) -> Iterator[CapturedEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def on(self, channel: str) -> list[CapturedEvent]:
        """The events committed on ``channel``, in seq order."""
        return [event for event in self.events if event.channel == channel]

    def assert_published(
        self,
        channel: str,
        event_type: str,
        data: Any = _UNSET,
        *,
        count: int | None = None,
    ) -> list[CapturedEvent]:
        """Assert that ``event_type`` was committed on ``channel``; return the matches.

        With ``data``, only events whose decoded data equals it match
        (``unittest.mock.ANY`` matches anything, also inside dicts and lists). With
        ``count``, exactly that many must match; without it, at least one.
        """
        events = self.events
        matches = [
            event
            for event in events
            if event.channel == channel
            and event.event_type == event_type
            and (data is _UNSET or event.data == data)
        ]
        if (count is None and matches) or len(matches) == count:
            return matches
        wanted = f"{event_type!r} on {channel!r}"
        if data is not _UNSET:
            wanted += f" with data {data!r}"
        times = "at least once" if count is None else f"{count} times"
        raise AssertionError(
            f"expected {wanted} committed {times}, found {len(matches)}; "
            f"committed: {_listing(events)}"
        )

    def assert_not_published(
        self, channel: str | None = None, event_type: str | None = None
    ) -> None:
        """Assert that no event was committed on ``channel`` of ``event_type``.

        Leave either out to mean any; with neither, that nothing was committed at all.
        """
        events = self.events
        found = [
            event
            for event in events
            if (channel is None or event.channel == channel)
            and (event_type is None or event.event_type == event_type)
        ]
        if found:
            what = repr(event_type) if event_type else "event"
            where = f" on {channel!r}" if channel else ""
            raise AssertionError(
                f"expected no {what}{where} committed; committed: {_listing(found)}"
            )


def _listing(events: Sequence[CapturedEvent]) -> str:
    if not events:
        return "nothing"
    return "; ".join(str(event) for event in events)


@contextlib.contextmanager
def capture_events() -> Iterator[CapturedEvents]:
    """Record the events ``publish()`` and its relatives commit while the block is open.

    Events of every thread and every database alias are recorded, once their
    transaction commits (or, under ``TestCase``, once they would have: see the module's
    documentation). Read the result after the block, or at any point inside it.
    """
    captured = CapturedEvents()
    publish_observers.append(captured._observe)
    try:
        yield captured
    finally:
        publish_observers.remove(captured._observe)
        captured._close()
