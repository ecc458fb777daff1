"""The stream end to end under each supported ASGI server, in a subprocess on the test DB.

- uvicorn with uvloop and httptools, granian in ASGI mode, gunicorn with uvicorn's worker
  class (uvicorn-worker), and daphne through ``manage.py runserver`` with daphne in
  INSTALLED_APPS (tests/settings_daphne.py);
- ``uvicorn --workers 2``: a note posted to one worker reaches streams held by both.

Streams are read from the socket with the spec's parser (tests/sse_parser.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections

import pgsse
from pgsse.channels import pg_channel_name
from tests.clients import stream_client
from tests.postgres import Postgres
from tests.servers import ServerProcess
from tests.sse_parser import Event, EventStreamParser

pytestmark = pytest.mark.django_db(transaction=True)

SERVERS: dict[str, list[str]] = {
    "uvicorn": [
        sys.executable, "-m", "uvicorn", "chatsite.asgi:application",
        "--host", "127.0.0.1", "--port", "{port}", "--loop", "uvloop", "--http", "httptools",
        "--lifespan", "off", "--log-level", "warning",
    ],
    "granian": [
        sys.executable, "-m", "granian", "--interface", "asgi", "chatsite.asgi:application",
        "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
    ],
    "gunicorn": [
        sys.executable, "-m", "gunicorn", "chatsite.asgi:application",
        "--worker-class", "uvicorn_worker.UvicornWorker", "--bind", "127.0.0.1:{port}",
        "--graceful-timeout", "5", "--log-level", "warning",
    ],
    "daphne": [sys.executable, "manage.py", "runserver", "127.0.0.1:{port}", "--noreload"],
}  # fmt: skip
SETTINGS = {"daphne": "tests.settings_daphne"}


@dataclass
class RawStream:
    """One open SSE response, parsed as it arrives."""

    response: httpx.Response
    headers_after: float
    parser: EventStreamParser = field(default_factory=EventStreamParser)
    events: list[Event] = field(default_factory=list)
    chunks: AsyncIterator[bytes] | None = None

    @property
    def live(self) -> bool:
        """The stream sent its position: it is subscribed, and misses nothing from now on."""
        return bool(self.parser.last_event_id)

    def of_type(self, event_type: str) -> list[Event]:
        return [event for event in self.events if event.type == event_type]

    async def until(self, predicate: Callable[[RawStream], bool], timeout: float = 15) -> None:
        if self.chunks is None:
            self.chunks = self.response.aiter_raw()
        try:
            async with asyncio.timeout(timeout):
                while not predicate(self):
                    self.events.extend(self.parser.feed(await anext(self.chunks)))
        except TimeoutError:
            raise AssertionError(f"stream condition not met; got {self.events!r}") from None

    def client_port(self) -> int:
        address = self.response.extensions["network_stream"].get_extra_info("client_addr")
        return int(address[1])


@contextlib.asynccontextmanager
async def open_raw(
    client: httpx.AsyncClient, path: str, last_event_id: str | None = None
) -> AsyncIterator[RawStream]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    started = time.monotonic()
    async with client.stream("GET", path, headers=headers) as response:
        yield RawStream(response, time.monotonic() - started)


def _publish(channel: str, event_type: str, data: Any) -> None:
    try:
        pgsse.publish(channel, event_type, data)
    finally:
        connections.close_all()  # the test database is dropped at the end of the session


publish = sync_to_async(_publish)


def _position_of(channel: str) -> str:
    try:
        return pgsse.current_position([channel])
    finally:
        connections.close_all()


position_of = sync_to_async(_position_of)


def _listener_queries(pg_name: str) -> list[str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT query FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE %s",
                [f"%LISTEN%{pg_name}%"],
            )
            return [row[0] for row in cursor.fetchall()]
    finally:
        connections.close_all()


async def wait_for_unlisten(channel: str, timeout: float = 10) -> None:
    """Wait until a listener's last statement UNLISTENed ``channel``.

    The hub UNLISTENs a channel when its last subscription is released: this sees, from
    PostgreSQL, that the server freed every subscription of streams that disconnected.
    """
    pg_name = pg_channel_name(channel)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queries = await sync_to_async(_listener_queries)(pg_name)
        if any(f'UNLISTEN "{pg_name}"' in query for query in queries):
            return
        await asyncio.sleep(0.01)  # polling PostgreSQL's view: there is nothing to await
    raise AssertionError(f"no UNLISTEN of {channel} seen; last statements: {queries!r}")


@contextlib.contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    server.start()
    try:
        yield server
    finally:
        try:
            server.terminate(timeout=15)
        except Exception:
            server.kill()


def assert_healthy(server: ServerProcess) -> None:
    assert server.process is not None
    assert server.process.poll() is None, server.output()
    assert "Traceback" not in server.output(), server.output()


@pytest.mark.parametrize("name", ["uvicorn", "granian", "gunicorn", "daphne"])
async def test_stream_end_to_end(
    name: str, transactional_db: None, pg: Postgres, record_property: Callable[[str, Any], None]
) -> None:
    channel = f"servers:{name}"
    server = ServerProcess(
        SERVERS[name],
        pg.url,
        DJANGO_SETTINGS_MODULE=SETTINGS.get(name, "tests.settings"),
        TEST_ROOT_URLCONF="tests.urls",
    )
    with running(server):
        async with stream_client(server.url) as client, contextlib.AsyncExitStack() as stack:
            first = await stack.enter_async_context(open_raw(client, f"/events/{channel}/"))
            # Headers came before any event: nothing has been published on this channel.
            assert first.response.status_code == 200
            assert first.response.headers["content-type"].startswith("text/event-stream")
            assert first.response.headers["cache-control"] == "no-cache"
            assert (await position_of(channel)).endswith(":0"), "no event published yet"
            await first.until(lambda s: s.live)
            second = await stack.enter_async_context(open_raw(client, f"/events/{channel}/"))
            await second.until(lambda s: s.live)

            sent = time.monotonic()
            await publish(channel, "hello", {"server": name})
            await first.until(lambda s: bool(s.of_type("hello")))
            latency = time.monotonic() - sent
            await second.until(lambda s: bool(s.of_type("hello")))
            assert json.loads(first.of_type("hello")[0].data) == {"server": name}

            # The first client goes away; the other stream goes on.
            await first.response.aclose()
            await publish(channel, "after_disconnect", {"n": 1})
            await second.until(lambda s: bool(s.of_type("after_disconnect")))
            assert_healthy(server)
            resume_from = second.parser.last_event_id

        # Both clients gone: the server releases the channel, so no subscription leaked.
        await wait_for_unlisten(channel)
        await publish(channel, "while_nobody_listens", {"n": 2})
        async with (
            stream_client(server.url) as client,
            open_raw(client, f"/events/{channel}/", last_event_id=resume_from) as third,
        ):
            await third.until(lambda s: bool(s.of_type("while_nobody_listens")) and s.live)
            await publish(channel, "live_again", {"n": 3})
            await third.until(lambda s: bool(s.of_type("live_again")))
            assert [e.type for e in third.events] == ["while_nobody_listens", "live_again"]
        assert_healthy(server)
    record_property("headers_after_s", round(first.headers_after, 4))
    record_property("publish_to_client_s", round(latency, 4))
    print(f"{name}: headers after {first.headers_after * 1000:.1f} ms, "
          f"publish to client {latency * 1000:.1f} ms")  # fmt: skip


def workers(server: ServerProcess) -> list[int]:
    """The pids of the server's child processes (uvicorn's workers), read from /proc."""
    assert server.process is not None
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == server.process.pid:
                children.append(int(stat.parent.name))
    return children


def worker_of(server: ServerProcess, client_port: int) -> int | None:
    """The worker holding the server side of the connection from ``client_port``."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(address.split(":")[1], 16) for address in fields[1:3])
        if local == server.port and remote == client_port:
            inode = fields[9]
    assert inode is not None, "no such connection in /proc/net/tcp"
    for pid in workers(server):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
    return None


async def test_uvicorn_workers_share_one_postgresql(transactional_db: None, pg: Postgres) -> None:
    """Posted to whichever worker takes the request, a note reaches streams on both."""
    command = [*SERVERS["uvicorn"], "--workers", "2"]
    # The htmx board (served when turned on) gives anonymous streams and posts.
    server = ServerProcess(command, pg.url, CHAT_HTMX_RECIPE="1")
    with running(server):
        deadline = time.monotonic() + 30
        while len(workers(server)) < 2:
            assert time.monotonic() < deadline, server.output()
            await asyncio.sleep(0.05)  # process start-up: nothing to await from here
        async with stream_client(server.url) as client, contextlib.AsyncExitStack() as stack:
            streams: list[RawStream] = []
            held_by: dict[int, list[RawStream]] = {}
            # Open streams until both workers hold some (the kernel spreads accepts).
            while len(streams) < 6 or len(held_by) < 2:
                assert len(streams) < 40, f"all streams went to one worker: {held_by}"
                stream = await stack.enter_async_context(open_raw(client, "/htmx/events/"))
                await stream.until(lambda s: s.live)
                pid = worker_of(server, stream.client_port())
                assert pid is not None
                held_by.setdefault(pid, []).append(stream)
                streams.append(stream)

            for text in ("first note", "second note"):
                async with httpx.AsyncClient(base_url=server.url, timeout=15) as poster:
                    (await poster.get("/htmx/")).raise_for_status()
                    response = await poster.post(
                        "/htmx/notes/",
                        data={"author": "poster", "text": text},
                        headers={"X-CSRFToken": poster.cookies["csrftoken"]},
                    )
                    assert response.status_code == 204, response.text

            for stream in streams:
                await stream.until(lambda s: len(s.of_type("note")) == 2)
                notes = [json.loads(event.data) for event in stream.of_type("note")]
                assert "first note" in notes[0]
                assert "second note" in notes[1]
        assert_healthy(server)
        print(f"streams per worker: {sorted(len(s) for s in held_by.values())}")
