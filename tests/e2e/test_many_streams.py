"""Hundreds of streams on one server process share one listener: connections stay flat,
and no open stream holds one of Django's pooled connections."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from pgsse.hub import Hub
from tests.chat_accounts import ChatAccount, logged_in_stream_clients
from tests.clients import StreamReader, open_stream
from tests.postgres import Postgres
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

STREAMS = 200
ROOM_CHANNELS = ("room", "presence", "typing")


async def backends(pg: Postgres) -> int:
    """Client connections to the test database, not counting the one asking."""
    async with await psycopg.AsyncConnection.connect(pg.url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


def pooled_in_use() -> int:
    """Connections of this process's Django pool (the server's: it runs in this process)
    that someone holds now."""
    stats = cast(Any, connections["default"]).pool.get_stats()
    return int(stats["pool_size"]) - int(stats["pool_available"])


async def no_more_held(than: int) -> bool:
    """Whether the pool's connections held come back to ``than`` (the pool counts one it
    is still making as held: wait for it to settle)."""
    for _ in range(100):
        if pooled_in_use() <= than:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_200_streams_add_at_most_3_connections_and_all_receive(
    server: LiveServer, pg: Postgres
) -> None:
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    # 200 readers, each logged in as their own user (as 200 people would be).
    clients = await sync_to_async(logged_in_stream_clients)(server.url, STREAMS)
    await sync_to_async(connections.close_all)()  # the test itself holds none
    # What is open before any stream (a connection the fixtures' thread keeps, say) is
    # not the streams': the hub may add its listener and two readers, and the process's
    # notifier once it publishes (alice posts through this same process), no more;
    # besides, Django's pool may keep idle what the streams' request phases used (at
    # most its size, however many streams), none of it held by an open stream.
    pool_size = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    held = pooled_in_use()  # the fixtures' own (the test's thread keeps its connection)
    before = await backends(pg)
    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client)
        readers: list[StreamReader] = await asyncio.gather(
            *(
                stack.enter_async_context(open_stream(client, "/rooms/lobby/events/"))
                for client in clients
            )
        )
        await asyncio.gather(*(reader.wait_for(lambda r: bool(r.last_id)) for reader in readers))
        assert await no_more_held(than=held)
        assert await backends(pg) - before <= 3 + pool_size
        sent = await sync_to_async(alice.say)("lobby", "to all 200")
        await asyncio.gather(*(reader.wait_for(lambda r: bool(r.messages())) for reader in readers))
        assert all(reader.messages() == [sent] for reader in readers)
        assert await no_more_held(than=held)
        assert await backends(pg) - before <= 4 + pool_size
    alice.close()


async def test_disconnecting_200_streams_leaves_no_subscription_or_connection(
    server: LiveServer, pg: Postgres
) -> None:
    clients = await sync_to_async(logged_in_stream_clients)(server.url, STREAMS)
    await sync_to_async(connections.close_all)()
    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client)
        readers = await asyncio.gather(
            *(
                stack.enter_async_context(open_stream(client, f"/rooms/{room}/events/"))
                for client, room in zip(clients, ["lobby", "random"] * (STREAMS // 2), strict=True)
            )
        )
        await asyncio.gather(*(r.wait_for(lambda r: bool(r.last_id)) for r in readers))
        stats = server.on_hub(Hub.stats)
        # Each room page's stream follows its room's messages, presence and typing, its
        # user's own channel (unread counts), and the directory, one channel for all.
        assert (stats.subscriptions, stats.channels) == (
            STREAMS,
            2 * len(ROOM_CHANNELS) + STREAMS + 1,
        )
        during = await backends(pg)
    # All 200 client sockets are closed now; the server notices each disconnect.
    for _ in range(100):
        stats = server.on_hub(Hub.stats)
        if stats.subscriptions == 0:
            break
        await asyncio.sleep(0.05)
    assert (stats.subscriptions, stats.channels) == (0, 0)
    assert await backends(pg) <= during
    # The listener itself survives (it is per process, not per stream).
    assert stats.listener_connected
