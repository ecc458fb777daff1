"""The event log's tables. Reads and writes go through :mod:`pgsse.log` in plain SQL."""

from __future__ import annotations

from django.db import models


class Channel(models.Model):
    """One row per logical channel: its newest seq and how far the log has been pruned.

    ``publish()`` takes this row's lock to assign the next seq and holds it until commit,
    so seqs are gap-free and commit in order within a channel.
    """

    name = models.TextField(primary_key=True)
    last_seq = models.BigIntegerField(default=0, db_default=0)
    pruned_seq = models.BigIntegerField(
        default=0, db_default=0, help_text="Every event up to this seq has been pruned."
    )

    class Meta:
        db_table = "pgsse_channel"

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seq}"


class Event(models.Model):
    """One published event. ``data`` is the JSON text exactly as published and delivered."""

    id = models.BigAutoField(primary_key=True)
    channel = models.TextField()
    seq = models.BigIntegerField()
    type = models.TextField()
    data = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        db_table = "pgsse_event"
        constraints = [
            models.UniqueConstraint(fields=["channel", "seq"], name="pgsse_event_channel_seq"),
        ]
        indexes = [models.Index(fields=["created_at"], name="pgsse_event_created_at")]

    def __str__(self) -> str:
        return f"{self.channel} #{self.seq} {self.type}"
