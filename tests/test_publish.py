"""publish(): seqs at commit, transactions, limits and the notification, against the real
test database."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import sys
import threading
import uuid
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils.translation import gettext_lazy

from pgsse import InvalidChannel, InvalidEvent, apublish, publish, publish_many
from pgsse.channels import pg_channel_name
from pgsse.log import NOTIFY_PAYLOAD_LIMIT, UNKNOWN_SEQ, parse_payload
from pgsse.models import Channel, Event
from pgsse.notifier import get_notifier
from pgsse.stats import publish_stats
from tests.postgres import Postgres


def publish_and_roll_back(channel: str) -> None:
    with transaction.atomic():
        publish(channel, "rolled_back", 1)
        raise RuntimeError("roll back")


def logged(channel: str) -> list[tuple[int | None, str]]:
    return list(Event.objects.filter(channel=channel).order_by("seq").values_list("seq", "data"))


@pytest.mark.django_db(transaction=True)
def test_seqs_count_up_per_channel() -> None:
    for i in range(3):
        assert publish("room:a", "t", i) is None
    publish("room:b", "t", None)
    assert logged("room:a") == [(1, "0"), (2, "1"), (3, "2")]
    assert logged("room:b") == [(1, "null")]


@pytest.mark.django_db(transaction=True)
def test_events_published_in_a_transaction_get_their_seqs_at_commit() -> None:
    publish("room:a", "t", "before")
    with transaction.atomic():
        publish("room:a", "t", "staged")
        publish("room:b", "t", "staged")
        publish("room:a", "t", "staged too")
        # Staged: no seq taken, no channel row locked until COMMIT.
        assert logged("room:a") == [(1, '"before"'), (None, '"staged"'), (None, '"staged too"')]
        assert Channel.objects.get(name="room:a").last_seq == 1
    assert logged("room:a") == [(1, '"before"'), (2, '"staged"'), (3, '"staged too"')]
    assert logged("room:b") == [(1, '"staged"')]


@pytest.mark.django_db(transaction=True)
def test_rollback_gives_the_seq_back() -> None:
    publish("room:a", "t", "kept")
    with pytest.raises(RuntimeError):
        publish_and_roll_back("room:a")
    with transaction.atomic():
        publish("room:a", "t", "next")
        with pytest.raises(RuntimeError):
            publish_and_roll_back("room:a")  # a savepoint, rolled back
        publish("room:a", "t", "last")
    assert logged("room:a") == [(1, '"kept"'), (2, '"next"'), (3, '"last"')]


@pytest.mark.django_db
def test_bad_input_is_refused_before_touching_the_database() -> None:
    with pytest.raises(InvalidChannel):
        publish("bad channel", "t", 1)
    with pytest.raises(InvalidEvent):
        publish("room:a", "two\nlines", 1)
    with pytest.raises(InvalidEvent, match="streams send themselves"):
        publish("room:a", "reset", 1)
    with pytest.raises(TypeError):
        publish("room:a", "t", object())
    with pytest.raises(InvalidEvent, match="key must be"):
        publish("room:a", "t", 1, key="")
    with pytest.raises(InvalidEvent, match="key must be"):
        publish("room:a", "t", 1, key="k" * 201)
    assert not Event.objects.exists()


@pytest.mark.django_db
@override_settings(PGSSE={"MAX_EVENT_BYTES": 1000})
def test_an_event_larger_than_the_limit_is_refused_with_the_limit_named() -> None:
    publish("room:a", "t", "é" * 497)  # 994 bytes of UTF-8 and two quotes: 996
    with pytest.raises(InvalidEvent, match=r"is 1002 bytes of JSON; the limit is 1000"):
        publish("room:a", "t", "é" * 500)
    with pytest.raises(InvalidEvent, match="the limit is 1000"):
        publish_many([("room:a", "t", 1), ("room:b", "t", "x" * 1000)])
    assert Event.objects.count() == 1


@pytest.mark.django_db
@override_settings(PGSSE={"MAX_EVENT_BYTES": 10**6, "MAX_BUFFERED_BYTES": 4096})
def test_no_event_may_overflow_a_stream_by_itself() -> None:
    with pytest.raises(InvalidEvent, match="the limit is 2048"):
        publish("room:a", "t", "x" * 2047)


@pytest.mark.django_db
def test_a_key_is_stored_with_its_event() -> None:
    publish("room:a", "message_created", {"id": 7}, key="message:7")
    publish_many([("room:a", "message_updated", {"id": 7}, "message:7"), ("room:b", "t", 1)])
    rows = Event.objects.order_by("id").values_list("channel", "type", "key")
    assert list(rows) == [
        ("room:a", "message_created", "message:7"),
        ("room:a", "message_updated", "message:7"),
        ("room:b", "t", None),
    ]


def _listen(pg: Postgres, channel: str) -> psycopg.Connection:
    conn = psycopg.connect(pg.url, autocommit=True)
    conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
    return conn


@pytest.mark.django_db(transaction=True)
def test_notification_is_sent_after_commit_only(pg: Postgres) -> None:
    listener = _listen(pg, pg_channel_name("room:a"))
    with transaction.atomic():
        publish("room:a", "hello", {"text": "it's '; select 1; --"})
        assert list(listener.notifies(timeout=0.3)) == []
    (notify,) = list(listener.notifies(timeout=5, stop_after=1))
    assert parse_payload(notify.payload)[:3] == (
        "room:a",
        1,
        ("hello", json.dumps({"text": "it's '; select 1; --"}, separators=(",", ":"))),
    )
    with pytest.raises(RuntimeError):
        publish_and_roll_back("room:a")
    assert get_notifier().flush(5)
    assert list(listener.notifies(timeout=0.3)) == []
    listener.close()


@pytest.mark.django_db(transaction=True)
def test_the_publishing_transaction_sends_no_notify(pg: Postgres) -> None:
    """NOTIFY takes a database-wide lock at commit: the application's transaction never
    does, the notifier's own connection does."""
    listener = _listen(pg, pg_channel_name("room:a"))
    with transaction.atomic():
        publish("room:a", "t", 1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            publisher_pid = cursor.fetchone()[0]
    (notify,) = list(listener.notifies(timeout=5, stop_after=1))
    assert notify.pid != publisher_pid
    with psycopg.connect(pg.url, autocommit=True) as admin:
        name = admin.execute(
            "SELECT application_name FROM pg_stat_activity WHERE pid = %s", (notify.pid,)
        ).fetchone()
    assert name is not None
    assert name[0].startswith("pgsse-notifier ")
    listener.close()


@pytest.mark.django_db(transaction=True)
@override_settings(PGSSE={"NOTIFY": "in_transaction"})
def test_notify_in_transaction_is_sent_by_the_publishing_transaction(pg: Postgres) -> None:
    listener = _listen(pg, pg_channel_name("room:a"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        publisher_pid = cursor.fetchone()[0]
    publish("room:a", "t", "autocommit")  # sequenced at once: the event itself is sent
    with transaction.atomic():
        publish("room:a", "t", "staged")  # its seq is not known before commit: a wake-up
        publish("room:a", "t", "staged too")
    notifies = list(listener.notifies(timeout=5, stop_after=2))
    assert [n.pid for n in notifies] == [publisher_pid] * 2
    assert [parse_payload(n.payload)[:3] for n in notifies] == [
        ("room:a", 1, ("t", '"autocommit"')),
        ("room:a", UNKNOWN_SEQ, None),  # PostgreSQL sends one of identical notifications
    ]
    assert list(listener.notifies(timeout=0.3)) == []
    listener.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("size", "inline"), [(7_900, True), (7_999, False), (60_000, False)])
def test_large_events_are_notified_by_reference(pg: Postgres, size: int, inline: bool) -> None:
    listener = _listen(pg, pg_channel_name("room:big"))
    text = "x" * (size - 2)  # the JSON string adds two quotes
    publish("room:big", "big", text)
    (notify,) = list(listener.notifies(timeout=5, stop_after=1))
    assert len(notify.payload.encode()) < NOTIFY_PAYLOAD_LIMIT
    channel, seq, event, _ = parse_payload(notify.payload)
    assert (channel, seq) == ("room:big", 1)
    assert (event is not None) == inline
    assert Event.objects.get(channel="room:big").data == json.dumps(text)
    listener.close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_publishers_get_gap_free_seqs_in_commit_order() -> None:
    """Seqs are assigned at commit under the channel row's lock: a reader looking at any
    moment sees each channel's seqs as an unbroken prefix, never a later one first."""
    errors: list[BaseException] = []
    done = threading.Event()

    def publisher(n: int) -> None:
        try:
            for i in range(25):
                with transaction.atomic():
                    publish("room:race", "t", [n, i])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    glimpses = watch_prefixes(["room:race"], done, errors)
    threads = [threading.Thread(target=publisher, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    glimpses.join()
    assert errors == []
    rows = logged("room:race")
    assert [seq for seq, _ in rows] == list(range(1, 201))
    for n in range(8):  # each publisher's events in its own order
        mine = [json.loads(data)[1] for _, data in rows if json.loads(data)[0] == n]
        assert mine == list(range(25))


def watch_prefixes(
    channels: list[str], done: threading.Event, errors: list[BaseException]
) -> threading.Thread:
    """A thread that reads the log until ``done``, recording an error if it ever sees a
    channel's committed seqs with a hole (a later seq committed before an earlier one)."""

    def watch() -> None:
        try:
            with psycopg.connect(_url(), autocommit=True) as conn:
                while not done.is_set():
                    rows = conn.execute(
                        "SELECT channel, count(*), coalesce(max(seq), 0) FROM pgsse_event"
                        " WHERE channel = ANY(%s) AND seq IS NOT NULL GROUP BY channel",
                        (channels,),
                    ).fetchall()
                    for channel, count, highest in rows:
                        if count != highest:
                            raise AssertionError(f"{channel}: {count} events up to {highest}")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


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


def logged_data(channel: str) -> list[str]:
    return list(
        Event.objects.filter(channel=channel).order_by("seq").values_list("data", flat=True)
    )


@pytest.mark.django_db
def test_django_types_are_encoded_as_django_encodes_them() -> None:
    """DjangoJSONEncoder is the default, as for JsonResponse; the text stays compact."""
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678901)
    values = {
        "aware": when.replace(tzinfo=dt.UTC),
        "naive": when,
        "offset": when.replace(tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "day": when.date(),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "price": decimal.Decimal("1.10"),
        "label": gettext_lazy("Hello"),
        "text": "été",
    }
    publish("room:types", "t", values)
    (text,) = logged_data("room:types")
    assert text == (
        '{"aware":"2026-01-02T03:04:05.678Z","naive":"2026-01-02T03:04:05.678",'
        '"offset":"2026-01-02T03:04:05.678+02:00","day":"2026-01-02",'
        '"id":"12345678-1234-5678-1234-567812345678","price":"1.10","label":"Hello",'
        '"text":"été"}'
    )


class SetEncoder(DjangoJSONEncoder):
    """Sets as sorted lists, and Django's types as usual."""

    def default(self, o: Any) -> Any:
        if isinstance(o, set | frozenset):
            return sorted(o)
        return super().default(o)


@pytest.mark.django_db(transaction=True)  # sync_to_async publishes from another thread
async def test_a_custom_encoder_is_used_by_every_publishing_function() -> None:
    data = {"tags": {"b", "a"}, "on": dt.date(2026, 1, 2)}
    await apublish("room:enc", "t", data, encoder=SetEncoder)
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        await apublish("room:enc", "t", data)
    await sync_to_async(publish)("room:enc", "t", data, encoder=SetEncoder)
    await sync_to_async(publish_many)([("room:enc", "t", data)], encoder=SetEncoder)
    texts = await sync_to_async(logged_data)("room:enc")
    assert texts == ['{"tags":["a","b"],"on":"2026-01-02"}'] * 3


@pytest.mark.django_db
def test_a_custom_encoder_keeps_nan_refused() -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        publish("room:enc", "t", float("nan"), encoder=SetEncoder)
    with pytest.raises(ValueError, match="not JSON compliant"):
        publish("room:enc", "t", {"x": float("inf")}, encoder=json.JSONEncoder)
    assert not Event.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_queries_are_seen_by_whoever_watches_them() -> None:
    """publish()'s statements go through Django's cursor wrapper: the debug cursor of
    ``assertNumQueries`` and the debug toolbar, an ``execute_wrapper`` (and tools that
    patch the wrapper, APM tracing) see them, in autocommit and in ``atomic()``."""
    with CaptureQueriesContext(connection) as captured:
        publish("room:watched", "e", 1)
    assert any("pgsse_event" in query["sql"] for query in captured.captured_queries)
    seen: list[str] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        publish("room:watched", "e", 2)
        with transaction.atomic():
            publish("room:watched", "e", 3)
    assert sum("pgsse_event" in sql for sql in seen) == 2
    assert [seq for seq, _ in logged("room:watched")] == [1, 2, 3]


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements ORDER BY prepare_time")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_appends_are_prepared_once_per_connection_and_djangos_queries_are_not() -> None:
    """publish() prepares its statements on the connection, once (PostgreSQL plans them
    once, not per publish); Django's own queries stay as they were (no threshold is left
    on the connection); a rollback, after which psycopg forgets them, changes nothing."""
    # A fresh connection, nothing prepared on it (a pooled one would be lent again).
    connection.close()
    postgresql: Any = connection  # Django's PostgreSQL wrapper, with its pool
    if postgresql.pool is not None:
        postgresql.close_pool()
    publish("room:prepared", "e", "first")
    # Prepared from the second time on a connection: one opened for a single publish
    # (a request's, with CONN_MAX_AGE = 0) does not pay for preparing.
    assert not [statement for statement in _prepared_statements() if "pgsse" in statement]
    assert connection.connection.prepare_threshold is None  # Django's default
    for number in range(3):
        publish("room:prepared", "e", number)
        with transaction.atomic():
            publish("room:prepared", "e", number)
    statements = [statement for statement in _prepared_statements() if "pgsse" in statement]
    assert len(statements) == 2, statements  # the autocommit append and the staging
    assert connection.connection.prepare_threshold is None
    with contextlib.suppress(ValueError), transaction.atomic():
        publish("room:prepared", "e", "rolled back")
        raise ValueError
    publish("room:prepared", "e", "after the rollback")
    assert [data for _, data in logged("room:prepared")] == [
        '"first"',
        *(str(number) for number in range(3) for _ in range(2)),
        '"after the rollback"',
    ]
    # Logged queries (DEBUG, assertNumQueries) run unprepared, their SQL in the log.
    with CaptureQueriesContext(connection) as captured:
        publish("room:prepared", "e", "logged")
    assert any("pgsse_event" in (query["sql"] or "") for query in captured.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_prepared_statements_dropped_behind_psycopgs_back_are_prepared_again() -> None:
    """An application's DEALLOCATE ALL (or DISCARD ALL) through a plain cursor: psycopg
    still believes the appends prepared. In autocommit the publish is run again and
    succeeds; inside a transaction that transaction fails, and after its rollback the
    next publish succeeds."""
    for number in range(3):
        publish("room:discarded", "e", number)
        with transaction.atomic():
            publish("room:discarded", "e", number)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    publish("room:discarded", "e", "autocommit")
    for number in range(2):  # prepared again (the second time)
        with transaction.atomic():
            publish("room:discarded", "e", f"again {number}")
    with connection.cursor() as cursor:
        cursor.execute("DISCARD ALL")
    with pytest.raises(DatabaseError) as raised, transaction.atomic():
        publish("room:discarded", "e", "lost with its transaction")
    assert isinstance(raised.value.__cause__, psycopg.errors.InvalidSqlStatementName)
    with transaction.atomic():
        publish("room:discarded", "e", "atomic")
    publish("room:discarded", "e", "autocommit again")
    assert [data for _, data in logged("room:discarded")][-5:] == [
        '"autocommit"',
        '"again 0"',
        '"again 1"',
        '"atomic"',
        '"autocommit again"',
    ]
    assert len(logged("room:discarded")) == 11


@pytest.mark.django_db(transaction=True)
def test_database_errors_are_djangos_whether_queries_are_observed_or_not() -> None:
    """What the driver raises reaches the caller as Django's exception (which the
    application's error handling knows), and is counted as a database failure."""
    with connection.cursor() as cursor:
        cursor.execute("SET default_transaction_read_only = on")
    try:
        before = publish_stats().errors.get("database", 0)
        for observed in (False, True):
            watching = CaptureQueriesContext(connection) if observed else contextlib.nullcontext()
            with watching, pytest.raises(DatabaseError) as raised:
                publish("room:read-only", "e", 1)
            assert isinstance(raised.value.__cause__, psycopg.errors.ReadOnlySqlTransaction)
        assert publish_stats().errors.get("database", 0) == before + 2
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = off")


@pytest.mark.django_db(transaction=True)
def test_text_reaches_the_log_and_the_notifications_as_it_was(pg: Postgres) -> None:
    """Everything a PostgreSQL array literal would have to escape (quotes, backslashes,
    braces, commas, the word NULL), in data and keys, through every way of appending and
    notifying: what the log stores and what the listeners get is the text as encoded."""
    data = {"q": 'say "hi" \\ {a,b} NULL', "text": "é € 😀\nnext", "empty": ""}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    key = 'k "\\{,}" NULL'
    listener = _listen(pg, pg_channel_name("room:a"))
    publish("room:a", "t", data, key=key)  # autocommit
    with transaction.atomic():
        publish_many([("room:a", "t", data, key), ("room:b", "t", data), ("room:a", "t", data)])
    notifies = list(listener.notifies(timeout=5, stop_after=3))
    assert [parse_payload(n.payload)[:3] for n in notifies] == [
        ("room:a", seq, ("t", text)) for seq in (1, 2, 3)
    ]
    rows = Event.objects.order_by("id").values_list("channel", "data", "key")
    assert list(rows) == [
        ("room:a", text, key),
        ("room:a", text, key),
        ("room:b", text, None),
        ("room:a", text, None),
    ]
    listener.close()


@pytest.mark.django_db(transaction=True)
@override_settings(PGSSE={"NOTIFY": "in_transaction"})
def test_wake_ups_sent_in_the_transaction_name_every_channel(pg: Postgres) -> None:
    names = ["room:a", 'room:"quoted"', "room:{braced,}"]
    listeners = [_listen(pg, pg_channel_name(name)) for name in names]
    with transaction.atomic():
        publish_many([(name, "t", 1) for name in names])
    for name, listener in zip(names, listeners, strict=True):
        (notify,) = list(listener.notifies(timeout=5, stop_after=1))
        assert parse_payload(notify.payload)[:3] == (name, UNKNOWN_SEQ, None)
        listener.close()


@pytest.mark.django_db(transaction=True)
def test_a_failing_hand_over_to_the_notifier_does_not_fail_a_committed_publish(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """In autocommit the event is committed before it is handed to the notifier: an error
    there is logged (the hubs' sweep delivers the event), never raised to a caller who
    would publish it again."""

    class Broken:
        def send(self, events: object) -> None:
            raise RuntimeError("no notifier")

    monkeypatch.setattr(sys.modules["pgsse.publish"], "get_notifier", Broken)
    with caplog.at_level("ERROR", logger="pgsse.publish"):
        assert publish("room:a", "t", 1) is None
    assert logged("room:a") == [(1, "1")]
    assert "could not hand 1 committed events to the notifier" in caplog.text


@pytest.mark.django_db
def test_publishing_without_pgsse_installed_says_so_and_recovers() -> None:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    publish("room:a", "t", 1)  # the answer is remembered...
    without = [app for app in settings.INSTALLED_APPS if app != "pgsse"]
    refused = pytest.raises(ImproperlyConfigured, match="pgsse is not in INSTALLED_APPS")
    with override_settings(INSTALLED_APPS=without), refused:  # ...until INSTALLED_APPS changes
        publish("room:a", "t", 2)
    publish("room:a", "t", 3)
    assert Event.objects.filter(channel="room:a").count() == 2
