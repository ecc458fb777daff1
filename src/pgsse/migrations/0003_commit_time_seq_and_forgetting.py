"""Seqs assigned at commit, and a log that can forget.

- ``pgsse_event.seq`` may be NULL: an event published inside a transaction is staged
  without a seq, and a deferred constraint trigger sequences every event the transaction
  staged when it commits, locking its channels in one sorted sweep (see pgsse.log).
- ``pgsse_event.key`` names what an event is about, so that ``pgsse.redact()`` can find it;
  ``redacted_at`` marks an event whose type and data were erased (its seq stays).
- ``pgsse_channel.purged_at`` marks a purged channel: its events are gone and its name is
  never published to again.
"""

from django.db import migrations, models

# The function is pgsse.log's SEQUENCE_FUNCTION_SQL as of this migration (a migration keeps
# what it ran: a later change of the function comes with a migration of its own).
SEQUENCE_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION pgsse_sequence_staged() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    pending bigint[];
    head bigint;
BEGIN
    -- The transaction's first firing sequences every event it staged (its rows without a
    -- seq, from its first staged id on); the later ones find their row done.
    SELECT array_agg(id ORDER BY id) INTO pending
    FROM pgsse_event WHERE id >= NEW.id AND seq IS NULL;
    IF pending IS NULL OR pending[1] <> NEW.id THEN
        RETURN NULL;
    END IF;
    IF cardinality(pending) = 1 THEN
        -- One event (the common case): one channel, one lock, no sort.
        INSERT INTO pgsse_channel AS c (name, last_seq, pruned_seq) VALUES (NEW.channel, 1, 0)
        ON CONFLICT (name) DO UPDATE SET last_seq = c.last_seq + 1 WHERE c.purged_at IS NULL
        RETURNING c.last_seq INTO head;
        IF head IS NULL THEN  -- purged meanwhile: the event goes with its channel
            DELETE FROM pgsse_event WHERE id = NEW.id;
        ELSE
            UPDATE pgsse_event SET seq = head WHERE id = NEW.id;
        END IF;
        RETURN NULL;
    END IF;
    -- Several: every channel locked in one statement, in code-point order of the names.
    WITH staged AS (
        SELECT id, channel,
               row_number() OVER (PARTITION BY channel ORDER BY id) AS n,
               count(*) OVER (PARTITION BY channel) AS total
        FROM pgsse_event
        WHERE id = ANY(pending)
    ), heads AS (
        INSERT INTO pgsse_channel AS c (name, last_seq, pruned_seq)
        SELECT channel, max(total), 0 FROM staged
        GROUP BY channel
        ORDER BY channel COLLATE "C"
        ON CONFLICT (name) DO UPDATE SET last_seq = c.last_seq + excluded.last_seq
        WHERE c.purged_at IS NULL
        RETURNING c.name, c.last_seq
    ), sequenced AS (
        UPDATE pgsse_event AS e SET seq = h.last_seq - s.total + s.n
        FROM staged AS s JOIN heads AS h ON h.name = s.channel
        WHERE e.id = s.id
    )
    DELETE FROM pgsse_event AS e USING staged AS s
    WHERE e.id = s.id AND NOT EXISTS (SELECT 1 FROM heads AS h WHERE h.name = s.channel);
    RETURN NULL;
END
$$
"""

SEQUENCE_TRIGGER_SQL = """
CREATE CONSTRAINT TRIGGER pgsse_event_sequence
AFTER INSERT ON pgsse_event
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW WHEN (NEW.seq IS NULL)
EXECUTE FUNCTION pgsse_sequence_staged()
"""
DROP_TRIGGER_SQL = "DROP TRIGGER IF EXISTS pgsse_event_sequence ON pgsse_event"
DROP_FUNCTION_SQL = "DROP FUNCTION IF EXISTS pgsse_sequence_staged()"


class Migration(migrations.Migration):

    dependencies = [
        ("pgsse", "0002_channel_db_defaults"),
    ]

    operations = [
        migrations.AlterField(
            model_name="event",
            name="seq",
            field=models.BigIntegerField(
                null=True, help_text="NULL while staged in an open transaction."
            ),
        ),
        migrations.AddField(
            model_name="event",
            name="key",
            field=models.TextField(
                null=True, blank=True, help_text="What the event is about, for redact()."
            ),
        ),
        migrations.AddField(
            model_name="event",
            name="redacted_at",
            field=models.DateTimeField(null=True, blank=True),
        ),
        migrations.AddField(
            model_name="channel",
            name="purged_at",
            field=models.DateTimeField(null=True, blank=True),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                fields=["id"],
                condition=models.Q(seq__isnull=True),
                name="pgsse_event_staged",
            ),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                fields=["channel", "key"],
                condition=models.Q(key__isnull=False),
                name="pgsse_event_channel_key",
            ),
        ),
        migrations.RunSQL(
            [SEQUENCE_FUNCTION_SQL, SEQUENCE_TRIGGER_SQL],
            [DROP_TRIGGER_SQL, DROP_FUNCTION_SQL],
        ),
    ]
