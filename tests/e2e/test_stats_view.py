"""The test project's /stats/ view (read by the benchmark's reconnect storm): the hub's counters."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

import pgsse
from tests.clients import open_stream, stream_client
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


async def test_stats_count_nothing_before_a_stream_and_the_hub_after(
    stream_server: LiveServer,
) -> None:
    async with stream_client(stream_server.url) as client:
        # Wrapped, the hub opened with the worker (lifespan); alone, no hub runs yet: {}.
        before = (await client.get("/stats/")).json()
        assert (before.get("subscriptions", 0), before.get("channels", 0)) == (0, 0)
        async with open_stream(client, "/events/room:stats/") as reader:
            await reader.wait_for(lambda r: bool(r.last_id))
            await sync_to_async(pgsse.publish)("room:stats", "e", 1)
            await reader.wait_for(lambda r: bool(r.of_type("e")))
            stats = (await client.get("/stats/")).json()
    assert stats["subscriptions"] == 1
    assert stats["channels"] == 1
    assert stats["delivered"] >= 1
    assert "log_reads" in stats
