import django.contrib.postgres.fields
from django.db import migrations, models


def read_up_to_now(apps, schema_editor):
    """Existing members have read what was posted before unread counts existed."""
    Membership = apps.get_model("chat", "Membership")
    Message = apps.get_model("chat", "Message")
    newest = models.Subquery(
        Message.objects.filter(room_id=models.OuterRef("room_id"))
        .order_by("-id")
        .values("id")[:1]
    )
    Membership.objects.update(last_read_id=models.functions.Coalesce(newest, 0))


class Migration(migrations.Migration):

    dependencies = [
        ("chat", "0003_accounts_private_rooms_presence"),
    ]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="last_read_id",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="message",
            name="mentions",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(max_length=150), blank=True, default=list, size=None
            ),
        ),
        migrations.RunPython(read_up_to_now, migrations.RunPython.noop),
    ]
