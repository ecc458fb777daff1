"""The peers' own tables in the bench database, installed by the driver before they start.

pg-sse watches a table of the application's: ``bench_peer_event`` (a room key, the event's
JSON text, a bigserial id that is the stream's cursor), wired to its channel by the
trigger SQL its README gives (``trigger_sql(..., order_column="id", on=("insert",))``).
django-eventstream's tables come from its migrations (bench/database.py migrates them).
"""

from __future__ import annotations

from pg_sse import trigger_sql

from bench.database import BenchDatabase

PG_SSE_TABLE = "bench_peer_event"
PG_SSE_CHANNEL = "bench_peer_change"
#: django-eventstream's event table (``DjangoModelStorage``).
EVENTSTREAM_TABLE = "django_eventstream_event"

_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {PG_SSE_TABLE} ("
    " id bigserial PRIMARY KEY, room text NOT NULL, data text NOT NULL);"
    f" CREATE INDEX IF NOT EXISTS {PG_SSE_TABLE}_room_id ON {PG_SSE_TABLE} (room, id)"
)


def install(database: BenchDatabase) -> None:
    database.execute(_CREATE)
    database.execute(
        trigger_sql(
            PG_SSE_TABLE,
            key_column="room",
            channel=PG_SSE_CHANNEL,
            order_column="id",
            on=("insert",),
        )
    )
