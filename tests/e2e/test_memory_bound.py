"""Clients that stop reading cannot make the server hold memory without limit.

The attack, as found: a channel with hundreds of large events, resumed from its start by
clients whose sockets never read (a small receive buffer, so the kernel does not take the
replay for them). Before the bound, 10 such clients added 277 MiB to the server, held for
minutes. Now each stream holds at most ``MAX_BUFFERED_BYTES`` queued or in flight (the
replay reads its next batch only once the previous one is written), and a write that
does not complete within ``WRITE_TIMEOUT`` closes the stream.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async

import pgsse
from pgsse.position import canonical_channels, format_position
from tests.postgres import Postgres
from tests.processes import ServerProcess, project_worker

pytestmark = pytest.mark.django_db(transaction=True)

WRITE_TIMEOUT = 3.0
MiB = 1024 * 1024


@pytest.fixture
def server(transactional_db: None, pg: Postgres) -> Iterator[ServerProcess]:
    # What is bounded here is memory per stream and the write, not the replay's length.
    started = project_worker(
        pg.url, WRITE_TIMEOUT=WRITE_TIMEOUT, MAX_STREAMS_PER_USER=None, MAX_REPLAY_BYTES=None
    ).start()
    try:
        yield started
    finally:
        started.kill()


def rss(server: ServerProcess) -> int:
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmRSS:")]
    return int(line.split()[1]) * 1024


def non_reading_stream(port: int, path: str, last_event_id: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        f"Last-Event-ID: {last_event_id}\r\n\r\n".encode()
    )
    return sock


async def hub_stats(server: ServerProcess) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer: dict[str, object] = (await client.get("/stats/")).json()
    return answer


def published_large_events(channel: str, count: int) -> None:
    text = "😀" * 4000  # 16 KB of UTF-8 per event: 8 MB for 500
    pgsse.publish_many([(channel, "message_updated", {"n": n, "text": text}) for n in range(count)])


@pytest.mark.parametrize("clients", [10, 100])
async def test_streams_that_never_read_hold_bounded_memory_and_are_closed(
    server: ServerProcess, clients: int
) -> None:
    channel = "room:big"
    await sync_to_async(published_large_events)(channel, 500)
    start = format_position(canonical_channels([channel]), {channel: 0})
    warm = non_reading_stream(server.port, f"/events/{channel}/", start)  # hub, caches, pool
    await asyncio.sleep(1)
    warm.close()
    await asyncio.sleep(0.5)
    baseline = rss(server)
    attackers = [
        non_reading_stream(server.port, f"/events/{channel}/", start) for _ in range(clients)
    ]
    try:
        peak = baseline
        # The clock visits every stream once a second; a loaded machine takes longer.
        deadline = time.monotonic() + WRITE_TIMEOUT + 20
        closed = 0
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            peak = max(peak, rss(server))
            stats = await hub_stats(server)
            closed = dict(stats["streams_closed"]).get("write_timeout", 0)  # type: ignore[call-overload]
            if closed >= clients:
                break
        assert closed >= clients
        assert stats["subscriptions"] == 0
    finally:
        for sock in attackers:
            sock.close()
    # Without the bound: 27 MiB per client. With it: about one batch queued or in flight
    # per stream (a batch is at most half of MAX_BUFFERED_BYTES, 256 KiB by default), plus
    # the server's own write buffer; the allowance is generous for allocator noise.
    assert peak - baseline < clients * 600 * 1024 + 16 * MiB, (peak - baseline) / MiB
