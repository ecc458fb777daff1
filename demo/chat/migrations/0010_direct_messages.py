from django.db import migrations, models


class Migration(migrations.Migration):
    """Direct conversations: private rooms whose members are fixed, one per set of people."""

    dependencies = [
        ("chat", "0009_attachments"),
    ]

    operations = [
        migrations.AddField(
            model_name="room",
            name="direct",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="room",
            name="direct_key",
            field=models.CharField(blank=True, max_length=200, null=True, unique=True),
        ),
    ]
