"""pg-sse as its README sets it up, a peer measured beside pgsse.

``uvicorn bench.pg_sse_peer:app``: a Starlette application with one ``Hub`` per process
(its own LISTEN connection), each stream ``hub.sse(room, read=..., cursor=..., start=...)``
re-reading ``bench_peer_event`` from its cursor on every wake-up, with async reads on a
``psycopg_pool.AsyncConnectionPool`` of 10 connections (the README's suggestion), the
cursor parsed from ``Last-Event-ID`` by ``IntCursor`` and the client's address as ``owner``,
as the README advises for public endpoints.

Its caps are on by default (500 streams per process, 5 per key and owner);
``PG_SSE_MAX_SUBSCRIBERS`` and ``PG_SSE_MAX_PER_OWNER`` raise them (the bench does for
every run, and the report says so).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from pg_sse import Event, Hub, IntCursor
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from bench.peer_tables import PG_SSE_CHANNEL, PG_SSE_TABLE

DATABASE_URL = os.environ["DATABASE_URL"]
READ = f"SELECT id, data FROM {PG_SSE_TABLE} WHERE room = %s AND id > %s ORDER BY id LIMIT 500"
LATEST = f"SELECT coalesce(max(id), 0) FROM {PG_SSE_TABLE} WHERE room = %s"

hub = Hub(
    DATABASE_URL,
    channel=PG_SSE_CHANNEL,
    max_subscribers=int(os.environ.get("PG_SSE_MAX_SUBSCRIBERS", "500")),
    max_per_owner=int(os.environ.get("PG_SSE_MAX_PER_OWNER", "5")),
)
pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
    DATABASE_URL, min_size=1, max_size=10, open=False, kwargs={"autocommit": True}
)
cursors = IntCursor()


async def read_after(room: str, after: int) -> list[Event]:
    async with pool.connection() as conn:
        rows = await (await conn.execute(READ, (room, after))).fetchall()
    return [Event(data, id=event_id) for event_id, data in rows]


async def latest_id(room: str) -> int:
    async with pool.connection() as conn:
        row = await (await conn.execute(LATEST, (room,))).fetchone()
    return int(row[0]) if row else 0


async def stream(request: Request) -> Any:
    room = request.path_params["channel"]
    return hub.sse(
        room,
        read=partial(read_after, room),
        cursor=cursors.parse_one(request.headers.get("last-event-id")),
        start=partial(latest_id, room),
        owner=request.client.host if request.client else None,
    )


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await pool.open()
    try:
        async with hub.lifespan(app):
            yield
    finally:
        await pool.close()


app = Starlette(routes=[Route("/events/{channel}/", stream)], lifespan=lifespan)
