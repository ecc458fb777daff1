"""Delivery under faults: a killed listener, a restarted PostgreSQL, a client that stops reading.

Every test checks the invariant, not just survival: each stream receives every committed
event of its channel exactly once, in commit (seq) order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.test import override_settings

import pgsse
from tests.chunked import dechunk
from tests.clients import LightReader, ResumingReader, stream_client
from tests.postgres import Postgres
from tests.servers import LiveServer
from tests.sse_parser import parse

pytestmark = pytest.mark.django_db(transaction=True)


def committed(channel: str) -> list[object]:
    """The channel's events as the log holds them, in seq order: the truth."""
    import json

    from pgsse.models import Event

    return [json.loads(e.data) for e in Event.objects.filter(channel=channel).order_by("seq")]


def listener_pid(server: LiveServer) -> int | None:
    return server.on_hub(lambda hub: hub.listener_pid)


async def test_listener_killed_every_second_loses_nothing_and_closes_no_stream(
    stream_server: LiveServer, pg: Postgres
) -> None:
    total = 400
    async with stream_client(stream_server.url) as client:
        readers = [ResumingReader(client, "/events/room:kill/").start() for _ in range(5)]
        for reader in readers:
            await asyncio.wait_for(reader.live.wait(), 10)
        kills = 0
        publishing = asyncio.create_task(_publish_steadily("room:kill", total, per_second=80))
        async with await psycopg.AsyncConnection.connect(pg.url, autocommit=True) as admin:
            while not publishing.done():
                await asyncio.sleep(1)
                pid = listener_pid(stream_server)
                if pid is not None:
                    await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    kills += 1
        await publishing
        for reader in readers:
            await reader.wait_for(lambda r: r.count >= total)
        for reader in readers:
            await reader.stop()
    assert kills >= 3
    for reader in readers:
        assert reader.payloads() == list(range(total))
        assert (reader.connections, reader.server_closes) == (1, 0)


async def _publish_steadily(channel: str, count: int, per_second: float) -> None:
    for n in range(count):
        await sync_to_async(pgsse.publish)(channel, "e", n)
        await asyncio.sleep(1 / per_second)


def _publish_through_outage(channel: str, count: int, stop_at: int, outage: Iterator[None]) -> None:
    """Publish ``count`` events; at event ``stop_at`` let ``outage`` restart the server.

    Publishing goes on through the outage: failures are retried until they succeed.
    """
    for n in range(count):
        if n == stop_at:
            next(outage)
        while True:
            try:
                pgsse.publish(channel, "e", n)
                break
            except Exception:
                connection.close()
                time.sleep(0.05)
        time.sleep(0.005)
    connection.close()


async def test_postgres_restart_mid_run_streams_resume_and_gap_fill(
    stream_server: LiveServer, restartable_pg: Postgres
) -> None:
    pg = restartable_pg
    total = 300

    def outage() -> Iterator[None]:
        pg.stop("fast")
        time.sleep(1.0)
        pg.start()
        yield

    async with stream_client(stream_server.url) as client:
        readers = [ResumingReader(client, "/events/room:restart/").start() for _ in range(5)]
        for reader in readers:
            await asyncio.wait_for(reader.live.wait(), 10)
        await sync_to_async(_publish_through_outage, thread_sensitive=False)(
            "room:restart", total, total // 2, outage()
        )
        await sync_to_async(connections.close_all)()  # this thread's was killed too
        truth = await sync_to_async(committed)("room:restart")
        for reader in readers:
            await reader.wait_for(lambda r: r.count >= len(truth))
        for reader in readers:
            await reader.stop()
    await sync_to_async(connections.close_all)()
    assert truth == list(range(total))
    for reader in readers:
        assert reader.payloads() == truth
        assert reader.server_closes == 0


def _raw_stream(port: int, path: str) -> socket.socket:
    """A client that opens a stream and then never reads: a tiny receive buffer fills."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    return sock


def _read_all(sock: socket.socket) -> tuple[list[str], bool]:
    """Everything the server sent until it closed: (event ids, closed by the server).

    Closed gracefully (its ``retry:`` got through) or reset (it could not even write that
    within a second, its buffers full, and the server dropped the connection): either
    way, what was sent before is read first (the kernel reports a reset only once the
    data received before it has been read)."""
    sock.settimeout(10)
    data = b""
    closed = False
    try:
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                data += chunk
            closed = True
    except ConnectionResetError:
        closed = True
    finally:
        sock.close()
    events, _ = parse(dechunk(data.split(b"\r\n\r\n", 1)[1]))
    return [event.last_event_id for event in events if event.type == "e"], closed


async def test_a_slow_consumer_is_cut_off_resumes_without_loss_and_slows_nobody(
    pg: Postgres, transactional_db: None, stream_app: Callable[[], Any]
) -> None:
    fast_clients, per_phase = 100, 400
    blob = "x" * 1000
    with override_settings(ROOT_URLCONF="tests.urls", PGSSE={"MAX_BUFFERED_BYTES": 50 * 1100}):
        server = LiveServer(stream_app()).start()
        slow: socket.socket | None = None
        try:
            async with stream_client(server.url) as client:
                readers = [
                    LightReader(server.url, "/events/room:slow/").start()
                    for _ in range(fast_clients)
                ]
                for reader in readers:
                    await asyncio.wait_for(reader.live.wait(), 20)
                await _publish_phase(readers, "room:slow", 0, per_phase, blob)
                slow = await asyncio.to_thread(_raw_stream, server.port, "/events/room:slow/")
                # It subscribes, and then never reads again.
                await _wait_for_subscriptions(server, fast_clients + 1)
                assert server.shrink_send_buffer(slow.getsockname()[1], 4096)
                # Every fast reader gets all of this phase while the slow client is stuck
                # (its socket is read only afterwards): fan-out never waits for it.
                await _publish_phase(readers, "room:slow", per_phase, per_phase, blob)
                ids, closed = await asyncio.to_thread(_read_all, slow)
                # The slow client reconnects from its last id and gets the rest.
                resumed = ResumingReader(client, "/events/room:slow/")
                resumed.last_id = ids[-1]
                resumed.start()
                await resumed.wait_for(lambda r: r.count >= per_phase - len(ids))
                await resumed.stop()
                for reader in readers:
                    await reader.stop()
        finally:
            if slow is not None:
                slow.close()  # read and closed already, unless the test failed before
            server.stop()
    # The server cut the slow client off part-way through the second phase.
    assert closed
    assert 0 < len(ids) < per_phase
    assert [n for n, _ in resumed.payloads()] == list(range(len(ids) + per_phase, 2 * per_phase))
    # The others lost nothing, got nothing twice or out of order, and stayed connected.
    for reader in readers:
        assert [n for n, _ in reader.payloads()] == list(range(2 * per_phase))
        assert (reader.connections, reader.server_closes) == (1, 0)


async def _publish_phase(
    readers: Sequence[ResumingReader], channel: str, first: int, count: int, blob: str
) -> None:
    """Publish events ``first`` to ``first + count - 1``; wait until every reader has them."""
    before = [r.count for r in readers]
    for n in range(first, first + count):
        await sync_to_async(pgsse.publish)(channel, "e", [n, blob])
    for reader, offset in zip(readers, before, strict=True):
        await reader.wait_for(lambda r, o=offset: r.count >= o + count)


async def _wait_for_subscriptions(server: LiveServer, count: int, timeout: float = 10) -> None:
    """Wait until the server's hub holds ``count`` subscriptions."""
    deadline = time.monotonic() + timeout
    while (held := server.on_hub(lambda hub: hub.stats().subscriptions)) < count:
        assert time.monotonic() < deadline, f"{held} subscriptions, expected {count}"
        await asyncio.sleep(0.01)  # polling the server's counters: there is nothing to await


#: A publisher that dies right after its transaction commits and before its notifier
#: hears of it: its own on_commit callback, registered first, kills the process.
_DIE_AFTER_COMMIT = """
import os, signal, sys
import django
django.setup()
from django.db import transaction
import pgsse
with transaction.atomic():
    transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
    pgsse.publish(sys.argv[1], "e", {"n": 1})
    pgsse.publish(sys.argv[1], "e", {"n": 2})
"""


async def test_a_publisher_killed_between_commit_and_notify_loses_nothing(
    pg: Postgres, stream_server: LiveServer
) -> None:
    """Nothing was notified; the sweep delivers both events within ``SWEEP_INTERVAL``."""
    from pgsse.channels import pg_channel_name
    from tests.processes import PYTHONPATH, REPOSITORY

    channel = "crash:after-commit"
    reader = LightReader(stream_server.url, f"/events/{channel}/").start()
    listener = await psycopg.AsyncConnection.connect(pg.url, autocommit=True)
    try:
        name = psycopg.sql.Identifier(pg_channel_name(channel))
        await listener.execute(psycopg.sql.SQL("LISTEN {}").format(name))
        await asyncio.wait_for(reader.live.wait(), 30)
        env = {
            **os.environ,
            "DATABASE_URL": pg.url,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": PYTHONPATH,
        }
        died = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", _DIE_AFTER_COMMIT, channel],
            cwd=REPOSITORY,
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert died.returncode == -9, died.stderr.decode()[-2000:]
        assert await sync_to_async(committed)(channel) == [{"n": 1}, {"n": 2}]
        started = time.monotonic()
        await reader.wait_for(lambda r: r.count == 2, timeout=30)
        waited = time.monotonic() - started
        assert reader.payloads() == [{"n": 1}, {"n": 2}]
        # Delivered by the sweep: no notification was ever sent for them.
        assert [n async for n in listener.notifies(timeout=0.2)] == []
        sweep = stream_server.on_hub(lambda hub: hub.settings.SWEEP_INTERVAL)
        # The documented bound (one sweep), with room for a loaded machine.
        assert waited < sweep + 5, f"delivered after {waited:.1f} s"
    finally:
        await listener.close()
        await reader.stop()
