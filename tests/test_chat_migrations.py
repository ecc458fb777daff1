"""The chat's data migrations, run on real data."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

import pgsse
from chat.models import Message, Room
from pgsse.models import Channel, Event

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_old_slug_named_channels_are_purged() -> None:
    migration = importlib.import_module("chat.migrations.0005_forget_slug_channels")
    for name in ("room:lobby", "presence:lobby", "typing:plans-k3x9q2mw", "room:42", "user:7"):
        pgsse.publish(name, "message_created", {"text": f"said on {name}"})
    with connection.schema_editor() as editor:
        migration.purge_slug_channels(apps, editor)
    left = Event.objects.exclude(channel="pgsse:control").values_list("channel", flat=True)
    assert sorted(left) == ["room:42", "user:7"]
    purged = Channel.objects.filter(purged_at__isnull=False).values_list("name", flat=True)
    assert sorted(purged) == ["presence:lobby", "room:lobby", "typing:plans-k3x9q2mw"]
    with pytest.raises(pgsse.ChannelPurged):
        pgsse.publish("room:lobby", "message_created", {"text": "again"})


def matching(words: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM chat_message"
            " WHERE search_vector @@ websearch_to_tsquery('chat_search', %s) ORDER BY id",
            [words],
        )
        return [row[0] for row in cursor.fetchall()]


def test_messages_written_before_file_names_were_searched_are_found_by_them() -> None:
    author = User.objects.create_user("alice")
    room = Room.objects.create(slug="budget", name="Budget")
    files = [{"id": "1", "name": "Budget-2027.xlsx"}]
    kept = Message.objects.create(room=room, author=author, text="", attachments=files)
    said = Message.objects.create(room=room, author=author, text="the budget is out")
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("chat", "0012_profiles")])
        assert matching("budget") == [said.pk]  # the text alone, as before
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("chat"))
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert matching("budget") == [kept.pk, said.pk]
    assert matching("Budget-2027.xlsx") == [kept.pk]
    assert matching("2027 xlsx") == [kept.pk]
