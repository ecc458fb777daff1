from django.db import migrations, models


class Migration(migrations.Migration):
    """A room's topic, set by its owner with its name (room settings)."""

    dependencies = [
        ("chat", "0010_direct_messages"),
    ]

    operations = [
        migrations.AddField(
            model_name="room",
            name="topic",
            field=models.CharField(blank=True, default="", max_length=250),
        ),
    ]
