"""publish_many(): several channels in one transaction, without deadlocks between publishers.

Two transactions that publish to channels A then B, and B then A, each hold one channel's
row lock and wait for the other's: PostgreSQL's deadlock detector aborts one of them.
publish_many() takes every lock it needs in one fixed order before appending.
"""

from __future__ import annotations

import functools
import json
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from django.db import OperationalError, connection, transaction

from pgsse import InvalidChannel, InvalidEvent, publish, publish_many
from pgsse.channels import pg_channel_name
from pgsse.log import parse_payload
from pgsse.models import Event
from tests.postgres import Postgres


def log_of(channel: str) -> list[tuple[int, str, str]]:
    rows = Event.objects.filter(channel=channel).order_by("seq")
    return list(rows.values_list("seq", "type", "data"))


@pytest.mark.django_db
def test_seqs_come_back_in_the_callers_order() -> None:
    publish("room:a", "t", "before")
    seqs = publish_many(
        [("room:b", "t", "b1"), ("room:a", "t", "a2"), ("room:b", "u", "b2"), ("room:c", "t", 0)]
    )
    assert seqs == [1, 2, 2, 1]
    assert publish("room:a", "t", "after") == 3
    assert log_of("room:a") == [(1, "t", '"before"'), (2, "t", '"a2"'), (3, "t", '"after"')]
    assert log_of("room:b") == [(1, "t", '"b1"'), (2, "u", '"b2"')]
    assert log_of("room:c") == [(1, "t", "0")]


@pytest.mark.django_db
def test_nothing_to_publish_touches_nothing() -> None:
    assert publish_many([]) == []
    assert publish_many(iter(())) == []
    assert not Event.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (("bad channel", "t", 1), InvalidChannel, "whitespace"),
        (("room:b", "reset", 1), InvalidEvent, "streams send themselves"),
        (("room:b", "a\tb", 1), InvalidEvent, "tab"),
        (("room:b", "t", object()), TypeError, "not JSON serializable"),
        (("room:b", "t"), InvalidEvent, r"event 1 is \('room:b', 't'\); publish_many\(\) takes"),
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


@pytest.mark.django_db
def test_a_rollback_gives_every_seq_back() -> None:
    with pytest.raises(RuntimeError):
        publish_many_and_roll_back()
    assert publish_many([("room:b", "t", 3), ("room:a", "t", 4)]) == [1, 1]


@pytest.mark.django_db(transaction=True)
def test_notifications_come_at_commit_in_seq_order_per_channel(pg: Postgres) -> None:
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
    assert received == [
        ("room:b", 1, ("t", "1")),
        ("room:a", 1, ("t", "2")),
        ("room:b", 2, None),
    ]


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


def is_deadlock(error: BaseException | None) -> bool:
    return isinstance(error, OperationalError) and isinstance(
        error.__cause__, psycopg.errors.DeadlockDetected
    )


@pytest.mark.django_db(transaction=True)
def test_publishing_one_by_one_in_opposite_orders_deadlocks() -> None:
    """The trap publish_many() avoids: PostgreSQL aborts one of the two transactions."""
    both_hold_one = threading.Barrier(2, timeout=30)

    def one_by_one(first: str, second: str) -> list[int]:
        with transaction.atomic():
            seqs = [publish(first, "t", first)]
            both_hold_one.wait()
            seqs.append(publish(second, "t", second))
            return seqs

    threads = [
        Publisher(lambda: one_by_one("room:a", "room:b")),
        Publisher(lambda: one_by_one("room:b", "room:a")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    errors = [thread.error for thread in threads if thread.error is not None]
    assert len(errors) == 1, errors
    assert is_deadlock(errors[0]), errors[0]
    (survivor,) = [thread for thread in threads if thread.error is None]
    assert survivor.result == [1, 1]


def wait_until_waiting_on_a_lock(pid: int, timeout: float = 10) -> None:
    with psycopg.connect(_url(), autocommit=True) as admin:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = admin.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row is not None and row[0] == "Lock":
                return
            time.sleep(0.01)  # polling PostgreSQL's view: there is nothing to await
    raise AssertionError(f"backend {pid} never waited on a lock")


def _url() -> str:
    from django.conf import settings

    db = settings.DATABASES["default"]
    return psycopg.conninfo.make_conninfo(
        dbname=db["NAME"],
        user=db["USER"],
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or db.get("OPTIONS", {}).get("host") or None,
        port=db.get("PORT") or None,
    )


@pytest.mark.django_db(transaction=True)
def test_publish_many_in_opposite_orders_waits_instead_of_deadlocking() -> None:
    """The same interleaving as above: the second transaction now waits, holding nothing."""
    first_holds = threading.Event()
    second_started = threading.Event()
    release_first = threading.Event()
    second_pid: list[int] = []

    def first() -> list[int]:
        with transaction.atomic():
            seqs = publish_many([("room:a", "t", "first a"), ("room:b", "t", "first b")])
            first_holds.set()
            assert release_first.wait(30)
            return seqs

    def second() -> list[int]:
        assert first_holds.wait(30)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                second_pid.append(cursor.fetchone()[0])
            second_started.set()
            return publish_many([("room:b", "t", "second b"), ("room:a", "t", "second a")])

    threads = [Publisher(first), Publisher(second)]
    for thread in threads:
        thread.start()
    try:
        assert second_started.wait(30)
        wait_until_waiting_on_a_lock(second_pid[0])
    finally:
        release_first.set()
    for thread in threads:
        thread.join(60)
    assert [(thread.error, thread.result) for thread in threads] == [
        (None, [1, 1]),
        (None, [2, 2]),
    ]
    assert [data for _, _, data in log_of("room:a")] == ['"first a"', '"second a"']
    assert [data for _, _, data in log_of("room:b")] == ['"first b"', '"second b"']


@pytest.mark.django_db(transaction=True)
def test_publishers_in_random_orders_never_deadlock_and_seqs_stay_gap_free() -> None:
    """Three publishers, released together by a barrier each round, list the same channels
    in random orders; every event lands once, each channel's seqs count up without a gap."""
    channels = [f"room:{name}" for name in "dcba"]
    rounds, per_channel = 30, 3
    seed = random.randrange(10**6)
    start = threading.Barrier(3, timeout=30)

    def publisher(number: int) -> list[tuple[list[tuple[str, str, Any]], list[int]]]:
        rng = random.Random(seed * 10 + number)
        rounds_done = []
        for round_ in range(rounds):
            events = [(c, "e", [number, round_, n]) for c in channels for n in range(per_channel)]
            rng.shuffle(events)
            start.wait()
            with transaction.atomic():
                rounds_done.append((events, publish_many(events)))
        return rounds_done

    threads = [Publisher(functools.partial(publisher, n)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [thread.error for thread in threads] == [None] * 3, f"seed {seed}"

    returned: dict[str, dict[int, list[Any]]] = defaultdict(dict)
    for thread in threads:
        for events, seqs in thread.result:
            for (channel, _, data), seq in zip(events, seqs, strict=True):
                assert seq not in returned[channel], f"seq {seq} of {channel} given twice"
                returned[channel][seq] = data
            # One transaction's events of a channel get consecutive seqs, in its order.
            for channel in channels:
                mine = [seq for (c, _, _), seq in zip(events, seqs, strict=True) if c == channel]
                assert mine == list(range(mine[0], mine[0] + per_channel)), f"seed {seed}"
    total = 3 * rounds * per_channel
    for channel in channels:
        logged = {seq: json.loads(data) for seq, _, data in log_of(channel)}
        assert sorted(logged) == list(range(1, total + 1)), f"seed {seed}"
        assert logged == returned[channel], f"seed {seed}"
