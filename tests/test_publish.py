"""publish(): seqs, transactions and the notification, against the real test database."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import threading
import uuid
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils.translation import gettext_lazy

from pgsse import InvalidChannel, InvalidEvent, apublish, publish, publish_many
from pgsse.channels import pg_channel_name
from pgsse.log import NOTIFY_PAYLOAD_LIMIT, parse_payload
from pgsse.models import Event
from tests.postgres import Postgres


def publish_and_roll_back(channel: str) -> None:
    with transaction.atomic():
        publish(channel, "rolled_back", 1)
        raise RuntimeError("roll back")


@pytest.mark.django_db
def test_seqs_count_up_per_channel() -> None:
    assert [publish("room:a", "t", i) for i in range(3)] == [1, 2, 3]
    assert publish("room:b", "t", None) == 1
    rows = list(Event.objects.filter(channel="room:a").values_list("seq", "data"))
    assert rows == [(1, "0"), (2, "1"), (3, "2")]


@pytest.mark.django_db
def test_rollback_gives_the_seq_back() -> None:
    publish("room:a", "t", "kept")
    with pytest.raises(RuntimeError):
        publish_and_roll_back("room:a")
    assert publish("room:a", "t", "next") == 2
    assert [e.data for e in Event.objects.order_by("seq")] == ['"kept"', '"next"']


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
    assert not Event.objects.exists()


def _listen(pg: Postgres, channel: str) -> psycopg.Connection:
    conn = psycopg.connect(pg.url, autocommit=True)
    conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
    return conn


@pytest.mark.django_db(transaction=True)
def test_notification_is_sent_at_commit_only(pg: Postgres) -> None:
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
    assert list(listener.notifies(timeout=0.3)) == []
    listener.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("size", "inline"), [(7_900, True), (7_999, False), (100_000, False)])
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
def test_concurrent_publishers_get_gap_free_seqs_in_commit_order(pg: Postgres) -> None:
    """Seqs are assigned under the channel row's lock: commit order is seq order."""
    listener = _listen(pg, pg_channel_name("room:race"))
    errors: list[BaseException] = []

    def publisher(n: int) -> None:
        try:
            for i in range(25):
                with transaction.atomic():
                    publish("room:race", "t", [n, i])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=publisher, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    seqs = [parse_payload(n.payload)[1] for n in listener.notifies(timeout=5, stop_after=200)]
    # Notifications arrive in commit order; commit order must equal seq order.
    assert seqs == list(range(1, 201))
    listener.close()


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
