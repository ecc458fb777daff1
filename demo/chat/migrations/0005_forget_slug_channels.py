"""Rooms' channels were named by slug (``room:<slug>``, ``presence:<slug>``,
``typing:<slug>``); they are named by primary key now. Nothing reads the old ones any more,
but their events (deleted and edited messages' texts among them) would stay until
retention pruned them, and a slug can pass to another room: purge them, which also retires
their names.

A slug of digits only is left alone: its old names are also those of a primary-key
channel (``room:42``), which must stay usable. Those events go with retention.
"""

from django.db import migrations

#: The prefixes of the chat's room channels.
KINDS = ("room:", "presence:", "typing:")


def purge_slug_channels(apps, schema_editor):
    import pgsse
    from pgsse.conf import get_settings

    if schema_editor.connection.alias != get_settings().DATABASE:
        return  # pgsse's log lives elsewhere
    Channel = apps.get_model("pgsse", "Channel")
    for name in Channel.objects.filter(purged_at__isnull=True).values_list("name", flat=True):
        kind = next((kind for kind in KINDS if name.startswith(kind)), None)
        number = name[len(kind) :] if kind is not None else ""
        if kind is not None and not (number.isascii() and number.isdigit()):
            pgsse.purge_channel(name)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0004_unread_mentions"),
        ("pgsse", "0003_commit_time_seq_and_forgetting"),
    ]

    operations = [migrations.RunPython(purge_slug_channels, migrations.RunPython.noop)]
