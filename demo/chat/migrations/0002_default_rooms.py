from __future__ import annotations

from django.db import migrations

DEFAULT_ROOMS = [("lobby", "Lobby"), ("random", "Random")]


def create_rooms(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    for slug, name in DEFAULT_ROOMS:
        Room.objects.get_or_create(slug=slug, defaults={"name": name})


class Migration(migrations.Migration):
    dependencies = [("chat", "0001_initial")]
    operations = [migrations.RunPython(create_rooms, migrations.RunPython.noop)]
