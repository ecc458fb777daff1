"""The chat's data migrations, run on real data."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection

import pgsse
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
