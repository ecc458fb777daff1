"""The fast path under ``pgsse.asgi.wrap()``: no thread per stream, shared replays.

A worker process is measured from outside (``/proc/<pid>/task``), and its hub's counters
are read over HTTP (tests/urls.py's ``/stats/``).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async

import pgsse
from pgsse.position import canonical_channels, format_position
from tests.clients import LightReader
from tests.postgres import Postgres
from tests.processes import ServerProcess, project_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def wrapped(transactional_db: None, pg: Postgres) -> Iterator[ServerProcess]:
    server = project_worker(pg.url, MAX_STREAMS_PER_USER=None).start()
    try:
        yield server
    finally:
        server.kill()


def threads(server: ServerProcess) -> int:
    assert server.process is not None
    return len(list(Path(f"/proc/{server.process.pid}/task").iterdir()))


async def open_readers(server: ServerProcess, path: str, count: int) -> list[LightReader]:
    readers = [LightReader(server.url, path).start() for _ in range(count)]
    await asyncio.wait_for(asyncio.gather(*(r.live.wait() for r in readers)), 120)
    return readers


async def stop(readers: list[LightReader]) -> None:
    await asyncio.gather(*(reader.stop() for reader in readers))


async def stats(server: ServerProcess) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer: dict[str, object] = (await client.get("/stats/")).json()
    return answer


async def test_open_streams_cost_no_thread(wrapped: ServerProcess) -> None:
    readers = await open_readers(wrapped, "/events/room:threads/", 10)  # the pool is up now
    counts = [threads(wrapped)]
    for _ in range(2):
        readers += await open_readers(wrapped, "/events/room:threads/", 245)
        counts.append(threads(wrapped))
    await sync_to_async(pgsse.publish)("room:threads", "e", "to all 500")
    await asyncio.gather(*(r.wait_for(lambda r: r.count == 1) for r in readers))
    await stop(readers)
    # 490 more streams, and at most a thread or two that the process starts on its own
    # (asyncio's executor, say): nothing that grows with the streams.
    assert counts[2] - counts[0] <= 2, counts


async def test_without_the_wrapper_each_stream_holds_a_thread(
    transactional_db: None, pg: Postgres
) -> None:
    # The measure above can see threads: under Django's handler alone, they grow.
    server = project_worker(pg.url, "tests.asgi_unwrapped:application").start()
    try:
        readers = await open_readers(server, "/events/room:threads/", 10)
        before = threads(server)
        readers += await open_readers(server, "/events/room:threads/", 90)
        during = threads(server)
        await stop(readers)
    finally:
        server.kill()
    assert during >= before + 90


async def test_a_reconnect_storm_is_replayed_from_shared_reads_once_in_order(
    wrapped: ServerProcess,
) -> None:
    streams, missed = 500, 100
    channel = "room:storm"
    await sync_to_async(pgsse.publish)(channel, "e", "before")
    position = format_position(canonical_channels([channel]), {channel: 1})
    for n in range(missed):  # published while every client was away
        await sync_to_async(pgsse.publish)(channel, "e", n)
    readers = await open_readers(wrapped, "/events/room:warm-up/", 1)  # start the hub
    await stop(readers)
    before = await stats(wrapped)
    readers = []
    for _ in range(streams):  # all at once, all from the same position
        reader = LightReader(wrapped.url, f"/events/{channel}/")
        reader.last_id = position
        readers.append(reader.start())
    await asyncio.gather(*(r.wait_for(lambda r: r.count >= missed, 60) for r in readers))
    await sync_to_async(pgsse.publish)(channel, "e", "live again")
    await asyncio.gather(*(r.wait_for(lambda r: r.count == missed + 1) for r in readers))
    after = await stats(wrapped)
    await stop(readers)
    for reader in readers:
        assert reader.payloads() == [*range(missed), "live again"]
        assert reader.connections == 1
    reads = int(after["log_reads"]) - int(before["log_reads"])  # type: ignore[call-overload]
    shared = int(after["shared_reads"]) - int(before["shared_reads"])  # type: ignore[call-overload]
    # One position, 100 events in one batch: read once (a second time at most, by a catch-up
    # racing the first stream); every other stream is served the same read.
    assert reads <= 2, (reads, shared)
    assert shared >= streams - reads


async def test_a_streams_life_leaves_no_reference_cycle(
    pg: Postgres, transactional_db: None
) -> None:
    """What lets the hub freeze older objects out of the collector's way (GC_FREEZE)."""
    from django.core.asgi import get_asgi_application
    from django.test import override_settings

    import pgsse.asgi
    from tests.servers import LiveServer

    def ours(garbage: list[object]) -> list[str]:
        modules = ("pgsse", "django", "uvicorn", "asgiref")
        return [
            type(item).__qualname__
            for item in garbage
            if type(item).__module__.split(".")[0] in modules
        ]

    with override_settings(ROOT_URLCONF="tests.urls"):
        server = LiveServer(pgsse.asgi.wrap(get_asgi_application())).start()
        try:
            readers = [LightReader(server.url, "/events/room:cycles/").start() for _ in range(5)]
            await asyncio.gather(*(r.live.wait() for r in readers))
            await stop(readers)  # warm: imports, caches, the pool's threads
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                readers = [
                    LightReader(server.url, "/events/room:cycles/").start() for _ in range(50)
                ]
                await asyncio.gather(*(r.live.wait() for r in readers))
                await sync_to_async(pgsse.publish)("room:cycles", "e", "one event")
                await asyncio.gather(*(r.wait_for(lambda r: r.count == 1) for r in readers))
                await stop(readers)
                for _ in range(100):
                    if server.on_hub(lambda hub: hub.stats().subscriptions) == 0:
                        break
                    await asyncio.sleep(0.05)
                gc.collect()
                found = ours(gc.garbage)
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
        finally:
            server.stop()
    assert found == [], found[:20]
