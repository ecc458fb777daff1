"""redact() and purge_channel() against the real test database, and the admin's actions."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client

from pgsse import (
    ChannelPurged,
    InvalidChannel,
    InvalidEvent,
    current_position,
    publish,
    publish_many,
    purge_channel,
    redact,
)
from pgsse.closing import CONTROL_CHANNEL
from pgsse.models import Channel, Event

pytestmark = pytest.mark.django_db(transaction=True)


def rows(channel: str) -> list[tuple[int | None, str, str, bool]]:
    events = Event.objects.filter(channel=channel).order_by("seq")
    return [(e.seq, e.type, e.data, e.redacted_at is not None) for e in events]


def control_events() -> list[tuple[str, str]]:
    events = Event.objects.filter(channel=CONTROL_CHANNEL).order_by("seq")
    return list(events.values_list("type", "data"))


def test_redact_by_key_keeps_the_seqs_and_erases_type_and_data() -> None:
    publish("room:1", "message_created", {"text": "secret"}, key="message:1")
    publish("room:1", "message_created", {"text": "kept"}, key="message:2")
    with transaction.atomic():
        publish("room:1", "message_updated", {"text": "secret, edited"}, key="message:1")
        # Committed events and those staged earlier in the transaction alike.
        assert redact("room:1", key="message:1") == 2
        publish("room:1", "message_deleted", {"id": 1})
    assert rows("room:1") == [
        (1, "", "", True),
        (2, "message_created", '{"text":"kept"}', False),
        (3, "", "", True),
        (4, "message_deleted", '{"id":1}', False),
    ]
    assert redact("room:1", key="message:1") == 0  # already erased
    # Every hub is told to drop what it kept of the channel: once, for the change.
    assert control_events() == [("forget", '{"channel":"room:1"}')]


def test_redact_by_seqs_and_only_in_its_channel() -> None:
    publish_many([("room:1", "t", "one"), ("room:1", "t", "two"), ("room:2", "t", "other")])
    assert redact("room:1", seqs=[2, 2, 99]) == 1
    assert rows("room:1") == [(1, "t", '"one"', False), (2, "", "", True)]
    assert rows("room:2") == [(1, "t", '"other"', False)]


def redact_and_roll_back(channel: str, key: str) -> None:
    with transaction.atomic():
        redact(channel, key=key)
        raise RuntimeError("roll back")


def test_a_rolled_back_redaction_erases_nothing() -> None:
    publish("room:1", "t", "said", key="k")
    with pytest.raises(RuntimeError):
        redact_and_roll_back("room:1", "k")
    assert rows("room:1") == [(1, "t", '"said"', False)]
    assert control_events() == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, TypeError, "needs key= or seqs="),
        ({"key": "k", "seqs": [1]}, TypeError, "needs key= or seqs="),
        ({"key": ""}, InvalidEvent, "key must be"),
        ({"seqs": [0]}, InvalidEvent, "seqs are integers >= 1"),
        ({"seqs": ["1"]}, InvalidEvent, "seqs are integers >= 1"),
        ({"seqs": [True]}, InvalidEvent, "seqs are integers >= 1"),
    ],
)
def test_redact_says_what_it_takes(kwargs: dict[str, object], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        redact("room:1", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidChannel):
        redact("pgsse:control", key="k")


def test_purge_deletes_the_events_and_the_name_is_never_published_to_again() -> None:
    publish_many([("room:gone", "t", 1), ("room:gone", "t", 2), ("room:stays", "t", 3)])
    assert purge_channel("room:gone") == 2
    assert rows("room:gone") == []
    channel = Channel.objects.get(name="room:gone")
    assert channel.purged_at is not None
    assert (channel.last_seq, channel.pruned_seq) == (2, 2)
    with pytest.raises(ChannelPurged, match="was purged"):
        publish("room:gone", "t", "autocommit")
    with pytest.raises(ChannelPurged), transaction.atomic():
        publish("room:gone", "t", "in a transaction")
    with pytest.raises(ChannelPurged):
        publish_many([("room:stays", "t", 4), ("room:gone", "t", "with others")])
    assert rows("room:gone") == []
    assert [seq for seq, *_ in rows("room:stays")] == [1]
    assert purge_channel("room:gone") == 0  # idempotent
    assert purge_channel("room:never-used") == 0  # a name can be retired before use
    with pytest.raises(ChannelPurged):
        publish("room:never-used", "t", 1)
    # Open streams of the channel end, and every hub drops what it kept of it.
    assert control_events()[:2] == [
        ("close", '{"client":null,"channel":"room:gone"}'),
        ("forget", '{"channel":"room:gone"}'),
    ]
    assert current_position(["room:gone"]).endswith(":2")


@pytest.mark.parametrize("with_others", [False, True])
def test_a_purge_discards_what_an_open_transaction_staged_for_the_channel(
    with_others: bool,
) -> None:
    staged, purged = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def publisher() -> None:
        try:
            with transaction.atomic():
                publish("room:p", "t", "staged before the purge")
                if with_others:
                    publish("room:other", "t", "unrelated")
                staged.set()
                assert purged.wait(30)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=publisher)
    thread.start()
    assert staged.wait(30)
    purge_channel("room:p")
    purged.set()
    thread.join(30)
    assert errors == []
    assert rows("room:p") == []
    assert rows("room:other") == ([(1, "t", '"unrelated"', False)] if with_others else [])
    assert Event.objects.filter(seq=None).count() == 0


def admin_client() -> Client:
    user = get_user_model().objects.create_superuser("operator", password="pw-operator")
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_lists_channels_and_events_read_only() -> None:
    publish("room:1", "t", {"text": "hello"}, key="message:1")
    publish("room:2", "t", 2)
    client = admin_client()
    page = client.get("/admin/pgsse/channel/")
    assert page.status_code == 200
    assert b"room:1" in page.content
    assert b"room:2" in page.content
    events = client.get("/admin/pgsse/event/", {"channel": "room:1"})
    assert events.status_code == 200
    assert b"hello" in events.content
    assert b"room:2" not in events.content
    assert client.get("/admin/pgsse/event/add/").status_code == 403
    event = Event.objects.get(channel="room:1")
    assert client.post(f"/admin/pgsse/event/{event.pk}/delete/").status_code == 403


def test_the_admin_redacts_and_purges_after_asking() -> None:
    publish("room:1", "t", {"text": "erase me"})
    publish("room:2", "t", 2)
    client = admin_client()
    event = Event.objects.get(channel="room:1")
    form = {"action": "redact_events", "_selected_action": [event.pk]}
    asking = client.post("/admin/pgsse/event/", form)
    assert asking.status_code == 200
    assert b"lose their type and data" in asking.content
    assert rows("room:1") == [(1, "t", '{"text":"erase me"}', False)]
    done = client.post("/admin/pgsse/event/", {**form, "confirmed": "yes"})
    assert done.status_code == 302
    assert rows("room:1") == [(1, "", "", True)]

    form = {"action": "purge", "_selected_action": ["room:2"]}
    assert b"can never be published" in client.post("/admin/pgsse/channel/", form).content
    assert rows("room:2") != []
    assert client.post("/admin/pgsse/channel/", {**form, "confirmed": "yes"}).status_code == 302
    assert rows("room:2") == []
    assert Channel.objects.get(name="room:2").purged_at is not None


def test_the_admins_actions_need_their_permissions() -> None:
    publish("room:1", "t", 1)
    staff = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_event", "view_channel"])
    )
    client = Client()
    client.force_login(staff)
    event = Event.objects.get(channel="room:1")
    page = client.get("/admin/pgsse/event/")
    assert page.status_code == 200
    assert b"redact_events" not in page.content
    form = {"action": "redact_events", "_selected_action": [event.pk], "confirmed": "yes"}
    client.post("/admin/pgsse/event/", form)
    assert rows("room:1") == [(1, "t", "1", False)]
