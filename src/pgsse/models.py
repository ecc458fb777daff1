"""The event log's tables. Reads and writes go through :mod:`pgsse.log` in plain SQL."""

from __future__ import annotations

from django.db import models


class Channel(models.Model):
    """One row per logical channel: its newest seq and how far the log has been pruned.

    The transaction that commits a channel's events locks this row while it sequences them
    (at COMMIT, every channel of the transaction in one sorted sweep: see :mod:`pgsse.log`),
    so seqs are gap-free and commit in order within a channel. A purged channel keeps its
    row as a tombstone: its name is never published to again.
    """

    name = models.TextField(primary_key=True)
    last_seq = models.BigIntegerField(default=0, db_default=0)
    pruned_seq = models.BigIntegerField(
        default=0, db_default=0, help_text="Every event up to this seq has been pruned."
    )
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "pgsse_channel"

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seq}"


class Event(models.Model):
    """One published event. ``data`` is the JSON text exactly as published and delivered.

    ``seq`` is NULL only while the event is staged in a transaction that has not committed
    (nobody else can see it then). A redacted event keeps its seq and loses its type and
    data: streams deliver it as an id-only frame.
    """

    id = models.BigAutoField(primary_key=True)
    channel = models.TextField()
    seq = models.BigIntegerField(null=True, help_text="NULL while staged in an open transaction.")
    type = models.TextField()
    data = models.TextField()
    created_at = models.DateTimeField()
    key = models.TextField(
        null=True, blank=True, help_text="What the event is about, for redact()."
    )
    redacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "pgsse_event"
        constraints = [
            models.UniqueConstraint(fields=["channel", "seq"], name="pgsse_event_channel_seq"),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="pgsse_event_created_at"),
            # What the commit-time trigger looks for: the staged events of its transaction.
            models.Index(
                fields=["id"], condition=models.Q(seq__isnull=True), name="pgsse_event_staged"
            ),
            models.Index(
                fields=["channel", "key"],
                condition=models.Q(key__isnull=False),
                name="pgsse_event_channel_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} #{self.seq} {self.type}"
