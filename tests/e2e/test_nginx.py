"""nginx (Debian's) in front of two workers, with the configuration docs/deployment.md prints.

The four things a proxy in front of streams must get right: no buffering, idle streams kept
open by heartbeats, HTTP/1.1 (with keep-alive) to the upstream, and a worker's SIGTERM moving
its clients to the other worker with nothing lost.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

import pgsse
from tests.clients import LightReader
from tests.nginx import Nginx
from tests.postgres import Postgres
from tests.servers import ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)

if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
    pytest.fail("nginx is not installed (make test installs it with apt-get)", pytrace=False)


def worker(database_url: str) -> ServerProcess:
    # Access log on: it shows the protocol and the client port of every upstream request.
    command = [
        sys.executable, "-m", "uvicorn", "tests.asgi:application", "--host", "127.0.0.1",
        "--port", "{port}", "--log-level", "info", "--timeout-graceful-shutdown", "5",
    ]  # fmt: skip
    return ServerProcess(
        command,
        database_url,
        DJANGO_SETTINGS_MODULE="tests.settings_proxy",
        TEST_ROOT_URLCONF="tests.urls",
    )


@pytest.fixture
def workers(pg: Postgres, transactional_db: None) -> Iterator[list[ServerProcess]]:
    servers = [worker(pg.url) for _ in range(2)]
    try:
        yield [server.start() for server in servers]
    finally:
        for server in servers:
            server.kill()
            server.log.close()


@pytest.fixture
def proxy(workers: list[ServerProcess], tmp_path: Path) -> Iterator[Nginx]:
    nginx = Nginx(tmp_path / "nginx", [w.port for w in workers], read_timeout="2s").start()
    yield nginx
    nginx.stop()


async def readers(nginx: Nginx, path: str, count: int) -> list[LightReader]:
    started = [LightReader(nginx.url, path).start() for _ in range(count)]
    for reader in started:
        await asyncio.wait_for(reader.live.wait(), 15)
    return started


async def test_the_first_event_arrives_within_a_second_unbuffered(proxy: Nginx) -> None:
    (reader,) = await readers(proxy, "/events/room:fast/", 1)
    try:
        for n in range(3):
            published = time.monotonic()
            await sync_to_async(pgsse.publish)("room:fast", "e", n)
            await reader.wait_for(lambda r, n=n: r.count == n + 1, timeout=5)
            assert reader.received_at[n] - published < 1.0
    finally:
        await reader.stop()


async def test_an_idle_stream_outlives_the_proxy_timeout_through_heartbeats(
    proxy: Nginx, workers: list[ServerProcess], tmp_path: Path
) -> None:
    (reader,) = await readers(proxy, "/events/room:idle/", 1)
    try:
        await asyncio.sleep(6)  # three times proxy_read_timeout (2 s), nothing published
        assert reader.connections == 1
        assert reader.server_closes == 0
        await sync_to_async(pgsse.publish)("room:idle", "e", "still here")
        await reader.wait_for(lambda r: r.count == 1)
        assert reader.connections == 1
    finally:
        await reader.stop()
    # The same stream behind a timeout shorter than the heartbeat is cut: the timeout is real.
    short = Nginx(tmp_path / "short", [w.port for w in workers], read_timeout="200ms").start()
    try:
        (cut,) = await readers(short, "/events/room:idle/", 1)
        try:
            await cut.wait_for(lambda r: r.server_closes >= 1, timeout=5)
            assert cut.clean_ends == 0  # cut by nginx, not ended by the server
        finally:
            await cut.stop()
    finally:
        short.stop()


async def test_the_upstream_gets_http_1_1_over_kept_alive_connections(
    proxy: Nginx, workers: list[ServerProcess]
) -> None:
    (reader,) = await readers(proxy, "/events/room:proto/", 1)
    await reader.stop()
    async with httpx.AsyncClient(base_url=proxy.url) as client:
        for _ in range(6):
            assert (await client.get("/healthz")).status_code == 200
    for server in workers:
        lines = re.findall(r'127\.0\.0\.1:(\d+) - "GET (\S+) (HTTP/[\d.]+)"', server.output())
        assert lines, server.output()
        assert {protocol for _, _, protocol in lines} == {"HTTP/1.1"}
        probes = [port for port, path, _ in lines if path == "/healthz"]
        # Keep-alive: nginx sent several requests over one upstream connection.
        assert len(set(probes)) < len(probes), lines


async def test_the_proxy_hides_metrics_and_passes_probes(
    proxy: Nginx, workers: list[ServerProcess]
) -> None:
    async with httpx.AsyncClient(base_url=proxy.url) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/readyz")).status_code in (200, 503)
    async with httpx.AsyncClient(base_url=workers[0].url) as direct:
        assert (await direct.get("/metrics")).status_code == 200  # scraped per worker


def committed(channel: str) -> list[object]:
    from pgsse.models import Event

    return [json.loads(e.data) for e in Event.objects.filter(channel=channel).order_by("seq")]


def publish_steadily(channel: str, total: int, per_second: float) -> None:
    for n in range(total):
        pgsse.publish(channel, "e", n)
        time.sleep(1 / per_second)
    connection.close()


async def worker_streams(server: ServerProcess) -> int:
    async with httpx.AsyncClient(base_url=server.url) as client:
        text = (await client.get("/metrics")).text
    match = re.search(r"^pgsse_streams_open (\S+)$", text, re.MULTILINE)
    return int(float(match.group(1))) if match else 0


async def test_a_workers_sigterm_sends_its_clients_to_the_other_with_nothing_lost(
    proxy: Nginx, workers: list[ServerProcess]
) -> None:
    stopping, staying = workers
    clients = await readers(proxy, "/events/room:move/", 20)
    try:
        moving = await worker_streams(stopping)
        assert moving > 0, "nginx should spread the streams over both workers"
        assert await worker_streams(staying) == 20 - moving
        total = 300
        publishing = asyncio.create_task(
            sync_to_async(publish_steadily, thread_sensitive=False)("room:move", total, 100)
        )
        await asyncio.sleep(1)
        stopped_in = await sync_to_async(stopping.terminate)()
        assert stopped_in < 5  # streams ended with retry:, no wait for the graceful timeout
        await publishing
        truth = await sync_to_async(committed)("room:move")
        assert truth == list(range(total))
        for client in clients:
            await client.wait_for(lambda r: r.count >= total, timeout=30)
        assert await worker_streams(staying) == 20
    finally:
        for client in clients:
            await client.stop()
    for client in clients:
        assert client.payloads() == truth  # every event once, in order
    moved = [client for client in clients if client.connections > 1]
    assert len(moved) == moving
    # Ended with retry:, not cut. (A reconnect may reach the stopping worker once more over
    # a connection nginx keeps alive: that stream, refused by the stopping hub, ends
    # cleanly too.)
    assert all(client.clean_ends >= 1 for client in moved)
    assert all(client.clean_ends == client.server_closes for client in clients)
