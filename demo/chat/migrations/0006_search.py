"""Full-text search over messages (chat.search): a tsvector kept by PostgreSQL itself (a
stored generated column) and a GIN index on it.

The text search configuration ``chat_search`` is English with accents folded (``unaccent``
before the stemmer), so that "ete" finds "Été" and "cafe" finds "café". The column is not
a model field: only chat.search reads it, and no other query should fetch it.
"""

from django.contrib.postgres.operations import UnaccentExtension
from django.db import migrations

CONFIGURATION = """
CREATE TEXT SEARCH CONFIGURATION chat_search (COPY = pg_catalog.english);
ALTER TEXT SEARCH CONFIGURATION chat_search
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;
"""

COLUMN = """
ALTER TABLE chat_message ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (to_tsvector('chat_search'::regconfig, text)) STORED;
CREATE INDEX chat_message_search ON chat_message USING gin (search_vector);
"""


class Migration(migrations.Migration):

    dependencies = [
        ("chat", "0005_forget_slug_channels"),
    ]

    operations = [
        UnaccentExtension(),
        migrations.RunSQL(CONFIGURATION, "DROP TEXT SEARCH CONFIGURATION chat_search"),
        migrations.RunSQL(
            COLUMN,
            "DROP INDEX chat_message_search; ALTER TABLE chat_message DROP COLUMN search_vector",
        ),
    ]
