"""Search finds messages by their files' names too.

The stored generated column ``search_vector`` (migration 0006) now reads the message's
text and the names in its ``attachments`` (the list the message keeps of its files, which
it saves again when one is deleted alone): each name as written, so that
``Quarterly-Report_2026.pdf`` finds it whole, and cut at its punctuation, so that
``report``, ``2026`` or ``pdf`` do too. PostgreSQL keeps it on every insert and edit, as
before. Changing the expression rewrites the table and its index once.
"""
from __future__ import annotations

from django.db import migrations

#: The names of a message's files, as one JSON text (``["a.pdf", "b.png"]``): immutable,
#: as a generated column's expression must be.
NAMES = "jsonb_path_query_array(attachments, '$[*].name')::text"

WITH_NAMES = f"""
    text || ' ' || {NAMES} || ' ' || regexp_replace({NAMES}, '[[:punct:]]+', ' ', 'g')
"""


def _column(document: str) -> str:
    return f"""
DROP INDEX chat_message_search;
ALTER TABLE chat_message DROP COLUMN search_vector;
ALTER TABLE chat_message ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (to_tsvector('chat_search'::regconfig, {document})) STORED;
CREATE INDEX chat_message_search ON chat_message USING gin (search_vector);
"""


class Migration(migrations.Migration):

    dependencies = [
        ("chat", "0012_profiles"),
    ]

    operations = [
        migrations.RunSQL(_column(WITH_NAMES), _column("text")),
    ]
