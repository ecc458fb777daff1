"""A client that stops reading loses its connection, under every supported server.

As found: 60 clients with 4 KiB receive buffers resumed a long history and never read.
pgsse ended their streams after ``WRITE_TIMEOUT``, but a stream that returns without
completing its response leaves the server to close the connection gracefully, which waits
for the client: 50 s later every connection was still ESTABLISHED, with its buffers, and
``MAX_STREAMS`` no longer counted them. Now the connection is dropped (reset) when the
write times out. The server's side of each connection is read from ``/proc/net/tcp``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

import pgsse
from pgsse.position import canonical_channels, format_position
from tests.e2e.test_memory_bound import non_reading_stream
from tests.postgres import Postgres
from tests.processes import ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)

WRITE_TIMEOUT = 2.0
APPLICATION = "tests.asgi:application"
SERVERS: dict[str, list[str]] = {
    "uvicorn": [
        sys.executable, "-m", "uvicorn", APPLICATION, "--host", "127.0.0.1", "--port", "{port}",
        "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
    ],
    "granian": [
        sys.executable, "-m", "granian", "--interface", "asgi", APPLICATION,
        "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
    ],
    "gunicorn": [
        sys.executable, "-m", "gunicorn", APPLICATION, "--worker-class",
        "uvicorn_worker.UvicornWorker", "--bind", "127.0.0.1:{port}", "--log-level", "warning",
    ],
    "daphne": [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", APPLICATION],
}  # fmt: skip

CLIENTS = 12


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest, pg: Postgres) -> Iterator[ServerProcess]:
    pgsse_settings = {
        "WRITE_TIMEOUT": WRITE_TIMEOUT,
        "MAX_STREAMS_PER_USER": None,
        # What is bounded here is a write that never completes, not the replay.
        "MAX_REPLAY_BYTES": None,
    }
    started = ServerProcess(
        SERVERS[request.param],
        pg.url,
        TEST_ROOT_URLCONF="tests.urls",
        TEST_PGSSE=json.dumps(pgsse_settings),
    ).start()
    try:
        yield started
    finally:
        started.stop()  # SIGTERM: granian's and gunicorn's masters stop their workers


def established(server_port: int, client_ports: set[int]) -> set[int]:
    """The client ports whose connection the server still holds ESTABLISHED."""
    held = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                peer_port = int(fields[2].rsplit(":", 1)[1], 16)
                if local_port == server_port and peer_port in client_ports and fields[3] == "01":
                    held.add(peer_port)
    return held


def large_history(channel: str, count: int) -> None:
    text = "x" * 16_000
    try:
        pgsse.publish_many([(channel, "e", {"n": n, "text": text}) for n in range(count)])
    finally:
        connections.close_all()  # the test database is dropped at the end of the session


async def test_a_write_timeout_drops_the_connection(server: ServerProcess) -> None:
    channel = "room:stalled"
    await sync_to_async(large_history)(channel, 300)  # 4.8 MB: far more than any buffer
    start = format_position(canonical_channels([channel]), {channel: 0})
    clients = [
        non_reading_stream(server.port, f"/events/{channel}/", start) for _ in range(CLIENTS)
    ]
    ports = {sock.getsockname()[1] for sock in clients}
    try:
        assert established(server.port, ports) == ports  # connected, and never reading
        # The clock visits every stream once a second; a loaded machine takes longer.
        async with asyncio.timeout(WRITE_TIMEOUT + 30):
            while held := established(server.port, ports):
                await asyncio.sleep(0.2)  # polling the kernel's table: nothing to await
        assert not held
    finally:
        for sock in clients:
            sock.close()
