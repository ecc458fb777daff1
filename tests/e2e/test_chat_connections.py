"""The chat's PostgreSQL connections (chatsite/settings.py): requests take theirs from
Django's pool, so many requests share a few backends instead of starting one each, and an
idle process gives them all back, holding none besides pgsse's own, as without the pool.

The live server runs in this process: its pool is this process's (Django keeps one per
alias), whose counters say how many connections it made for how many requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any, cast

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from tests.chat_accounts import ChatAccount
from tests.clients import open_stream
from tests.postgres import Postgres
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

#: Ordinary requests made one after the other: pages, API reads and writes.
REQUESTS = 40
#: Stream opens, each closed once live.
STREAMS = 20


def pool_options() -> dict[str, Any]:
    options: dict[str, Any] = settings.DATABASES["default"]["OPTIONS"]["pool"]
    return options


def pool_counters() -> dict[str, int]:
    return dict(cast(Any, connections["default"]).pool.get_stats())


def django_backends(pg: Postgres) -> int:
    """Backends of the test database that are not pgsse's own (which name themselves)."""
    with psycopg.connect(pg.url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            " AND application_name NOT LIKE 'pgsse-%%'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def ordinary_requests(alice: ChatAccount, count: int) -> None:
    for n in range(count):
        if n % 4 == 0:
            alice.say("lobby", f"message {n}")
        elif n % 4 == 1:
            assert alice.client.get("/rooms/lobby/").status_code == 200
        elif n % 4 == 2:
            assert alice.api("GET", "/api/rooms/lobby/messages/").status_code == 200
        else:
            assert alice.api("GET", "/api/unread/").status_code == 200


async def test_requests_and_stream_opens_share_a_few_pooled_connections(
    server: LiveServer,
) -> None:
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    before = pool_counters()
    await sync_to_async(ordinary_requests)(alice, REQUESTS)
    async with alice.stream_client() as client:
        for _ in range(STREAMS):
            async with open_stream(client, "/rooms/lobby/events/") as reader:
                await reader.wait_for(lambda r: bool(r.last_id))
    after = pool_counters()
    # Every request took a connection from the pool (the session, the user, the room)...
    assert after["requests_num"] - before["requests_num"] >= REQUESTS + STREAMS
    # ...and the pool made a few for all of them, never one per request.
    made = after["connections_num"] - before["connections_num"]
    assert made <= pool_options()["max_size"], made
    alice.close()


@pytest.fixture
def idle_server(server: LiveServer) -> LiveServer:
    """The chat's server, once the fixtures' own connection (this thread's, which made the
    rooms) has gone back to the pool."""
    connections.close_all()
    return server


async def test_an_idle_process_holds_no_connection_of_its_own(
    idle_server: LiveServer, pg: Postgres
) -> None:
    alice = await sync_to_async(ChatAccount)(idle_server.url, "alice")
    # Many at once, so that the pool grows past one connection.
    await asyncio.gather(
        *(sync_to_async(ordinary_requests, thread_sensitive=False)(alice, 8) for _ in range(4))
    )
    alice.close()
    # The test's own threads give theirs back too (as a request does when it ends).
    await sync_to_async(connections.close_all)()
    await asyncio.to_thread(connections.close_all)
    # Unused, the pool closes one connection per max_idle: an idle process is back to
    # none within max_size x max_idle.
    options = pool_options()
    deadline = time.monotonic() + options["max_size"] * options["max_idle"] + 10
    held = await asyncio.to_thread(django_backends, pg)
    while held and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        held = await asyncio.to_thread(django_backends, pg)
    assert held == 0


@contextlib.contextmanager
def exhausted_pool() -> Iterator[None]:
    """Every connection of the pool lent out (as to requests stuck on a slow database),
    and a request that finds none waits half a second instead of the deployed 10."""
    pool = cast(Any, connections["default"]).pool
    connections.close_all()  # this thread's, back to the pool first
    timeout, pool.timeout = pool.timeout, 0.5
    lent = [pool.getconn(timeout=10) for _ in range(pool_options()["max_size"])]
    try:
        yield
    finally:
        for conn in lent:
            pool.putconn(conn)
        pool.timeout = timeout


def test_when_the_pool_has_no_connection_to_lend_the_api_streams_and_pages_say_503(
    server: LiveServer,
) -> None:
    alice = ChatAccount(server.url, "alice")
    with exhausted_pool():
        answers = [
            alice.api("GET", "/api/unread/"),
            alice.api("POST", "/api/rooms/lobby/messages/", {"text": "waiting"}),
            alice.client.get("/rooms/lobby/events/", headers={"Accept": "text/event-stream"}),
        ]
    for answer in answers:
        assert answer.status_code == 503, answer.text[:300]
        assert answer.headers["content-type"] == "application/json"
        assert "unreachable" in answer.json()["error"]
        assert int(answer.headers["retry-after"]) > 0
    # A page says so too, in HTML (its templates would need the database).
    with exhausted_pool():
        page = alice.client.get("/rooms/lobby/")
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "cannot reach its database" in page.text
    assert int(page.headers["retry-after"]) > 0
    # Lent back: the same requests are served.
    assert alice.api("GET", "/api/unread/").status_code == 200
    assert alice.api("POST", "/api/rooms/lobby/messages/", {"text": "now"}).status_code == 201
    assert alice.client.get("/rooms/lobby/").status_code == 200
    alice.close()
