"""publish_many(), and publishing in any order: no lock is taken before COMMIT.

Two transactions that publish to channels A then B, and B then A, once deadlocked: each
held one channel's row lock and waited for the other's. Channels are now locked when the
transaction commits, all of them at once in one sorted sweep (tests/test_sequencing.py
holds the many-publisher proof).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction

from pgsse import InvalidChannel, InvalidEvent, publish, publish_many
from pgsse.channels import pg_channel_name
from pgsse.log import parse_payload
from pgsse.models import Event
from tests.postgres import Postgres


def log_of(channel: str) -> list[tuple[int | None, str, str]]:
    rows = Event.objects.filter(channel=channel).order_by("seq")
    return list(rows.values_list("seq", "type", "data"))


@pytest.mark.django_db(transaction=True)
def test_seqs_follow_the_callers_order() -> None:
    publish("room:a", "t", "before")
    events = [
        ("room:b", "t", "b1"),
        ("room:a", "t", "a2"),
        ("room:b", "u", "b2"),
        ("room:c", "t", 0),
    ]
    assert publish_many(events) is None
    publish("room:a", "t", "after")
    assert log_of("room:a") == [(1, "t", '"before"'), (2, "t", '"a2"'), (3, "t", '"after"')]
    assert log_of("room:b") == [(1, "t", '"b1"'), (2, "u", '"b2"')]
    assert log_of("room:c") == [(1, "t", "0")]


@pytest.mark.django_db
def test_nothing_to_publish_touches_nothing() -> None:
    assert publish_many([]) is None
    assert publish_many(iter(())) is None
    assert not Event.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (("bad channel", "t", 1), InvalidChannel, "whitespace"),
        (("room:b", "reset", 1), InvalidEvent, "streams send themselves"),
        (("room:b", "a\tb", 1), InvalidEvent, "tab"),
        (("room:b", "t", object()), TypeError, "not JSON serializable"),
        (("room:b", "t", 1, 5), InvalidEvent, "key must be a non-empty string"),
        (("room:b", "t"), InvalidEvent, r"event 1 is \('room:b', 't'\); publish_many\(\) takes"),
        (("room:b", "t", 1, "k", "x"), InvalidEvent, "event 1 is"),
        ("room:b", InvalidEvent, "event 1 is 'room:b'"),
    ],
)
def test_one_bad_event_publishes_none(bad: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        publish_many([("room:a", "t", 1), bad])
    assert not Event.objects.exists()


def publish_many_and_roll_back() -> None:
    with transaction.atomic():
        publish_many([("room:a", "t", 1), ("room:b", "t", 2)])
        raise RuntimeError("roll back")


@pytest.mark.django_db(transaction=True)
def test_a_rollback_gives_every_seq_back() -> None:
    with pytest.raises(RuntimeError):
        publish_many_and_roll_back()
    publish_many([("room:b", "t", 3), ("room:a", "t", 4)])
    assert log_of("room:a") == [(1, "t", "4")]
    assert log_of("room:b") == [(1, "t", "3")]


@pytest.mark.django_db(transaction=True)
def test_notifications_come_after_commit_in_seq_order_per_channel(pg: Postgres) -> None:
    listener = psycopg.connect(pg.url, autocommit=True)
    for channel in ("room:a", "room:b"):
        name = psycopg.sql.Identifier(pg_channel_name(channel))
        listener.execute(psycopg.sql.SQL("LISTEN {}").format(name))
    big = "x" * 9000  # notified by reference
    with transaction.atomic():
        publish_many([("room:b", "t", 1), ("room:a", "t", 2), ("room:b", "t", big)])
        assert list(listener.notifies(timeout=0.3)) == []
    received = [parse_payload(n.payload)[:3] for n in listener.notifies(timeout=5, stop_after=3)]
    listener.close()
    assert [r for r in received if r[0] == "room:b"] == [
        ("room:b", 1, ("t", "1")),
        ("room:b", 2, None),
    ]
    assert [r for r in received if r[0] == "room:a"] == [("room:a", 1, ("t", "2"))]


# -- deadlocks -----------------------------------------------------------------------


class Publisher(threading.Thread):
    """Runs ``work`` in a thread with its own database connection; keeps its error."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:
            self.error = exc
        finally:
            connection.close()


@pytest.mark.django_db(transaction=True)
def test_publishing_one_by_one_in_opposite_orders_does_not_deadlock() -> None:
    """The interleaving that deadlocked when publish() locked a channel mid-transaction:
    each transaction has published to one channel when the other publishes to it."""
    both_hold_one = threading.Barrier(2, timeout=30)

    def one_by_one(first: str, second: str) -> None:
        with transaction.atomic():
            publish(first, "t", f"{first} first")
            both_hold_one.wait()
            publish(second, "t", f"{first} first")

    threads = [
        Publisher(lambda: one_by_one("room:a", "room:b")),
        Publisher(lambda: one_by_one("room:b", "room:a")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [thread.error for thread in threads] == [None, None]
    # Both committed; whichever committed first is first on both channels.
    order = [data for _, _, data in log_of("room:a")]
    assert sorted(order) == ['"room:a first"', '"room:b first"']
    assert [data for _, _, data in log_of("room:b")] == order
    assert [seq for seq, _, _ in log_of("room:b")] == [1, 2]


@pytest.mark.django_db(transaction=True)
def test_a_transaction_left_open_holds_no_channel() -> None:
    """A transaction that published and stays open (a slow request) blocks nobody: the
    channel locks are taken at COMMIT only, for the commit's own length."""
    first_published = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        with transaction.atomic():
            publish_many([("room:a", "t", "first a"), ("room:b", "t", "first b")])
            first_published.set()
            assert release_first.wait(30)

    def second() -> None:
        assert first_published.wait(30)
        with transaction.atomic():
            publish("room:b", "t", "second b")
            publish("room:a", "t", "second a")

    threads = [Publisher(first), Publisher(second)]
    for thread in threads:
        thread.start()
    try:
        threads[1].join(30)
        assert not threads[1].is_alive(), "the second transaction waited for the first"
        assert threads[1].error is None
        # Committed first, so sequenced first.
        assert log_of("room:a") == [(1, "t", '"second a"')]
    finally:
        release_first.set()
    threads[0].join(30)
    assert threads[0].error is None
    assert [data for _, _, data in log_of("room:a")] == ['"second a"', '"first a"']
    assert [data for _, _, data in log_of("room:b")] == ['"second b"', '"first b"']
