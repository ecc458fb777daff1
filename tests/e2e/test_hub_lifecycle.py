"""A hub's connections against a real PostgreSQL: who opens them, who gives them back.

A hub is opened and closed by its owner (the ASGI wrapper's lifespan, a test), with
``async with``; without one (a server that sends no lifespan events), the first request
opens a hub owned by the event loop, closed when the loop ends. Either way every
connection is given back and nothing keeps the hub once its owner is gone. Every
connection pgsse opens says what it is in ``application_name``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
import weakref

import psycopg
import pytest

from pgsse import hub as hubs
from tests.postgres import Postgres

pytestmark = pytest.mark.django_db(transaction=True)


def pgsse_connections(pg: Postgres) -> dict[int, str]:
    """This process's hub connections as PostgreSQL sees them, by backend pid (not the
    notifier's: it belongs to publishing, and comes and goes with it)."""
    with psycopg.connect(pg.url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE %s"
            " AND application_name NOT LIKE 'pgsse-notifier %%'",
            (f"pgsse-% %:{os.getpid()}",),
        ).fetchall()
    return dict(rows)


def opened_since(pg: Postgres, before: dict[int, str]) -> list[str]:
    """The names of the connections opened since ``before`` was taken and still open.
    Connections of hubs that earlier tests closed may still be going away meanwhile
    (PostgreSQL notices a closed connection a moment later): they are not counted."""
    return sorted(name for pid, name in pgsse_connections(pg).items() if pid not in before)


def wait_until_closed(pg: Postgres, before: dict[int, str], timeout: float = 60) -> list[str]:
    """Wait until every connection opened since ``before`` is closed, or the deadline;
    the names of those left."""
    deadline = time.monotonic() + timeout
    left = opened_since(pg, before)
    while left and time.monotonic() < deadline:
        threading.Event().wait(0.05)  # polling PostgreSQL's view: there is nothing to await
        left = opened_since(pg, before)
    return left


async def _stream_once(hub: hubs.Hub) -> None:
    subscription = hub.track(("room:lifecycle",))
    await hub.subscribe(subscription)
    hub.unsubscribe(subscription)


async def _owned_by_the_caller(held: list[weakref.ref[hubs.Hub]]) -> None:
    async with hubs.Hub.from_django() as hub:
        assert hubs.current_hub() is hub
        await _stream_once(hub)
    held.append(weakref.ref(hub))


async def _owned_by_the_loop(held: list[weakref.ref[hubs.Hub]]) -> None:
    """What a server without lifespan events gets: a hub opened by the first request."""
    hub = hubs.get_hub()
    assert hubs.get_hub() is hub
    await _stream_once(hub)
    held.append(weakref.ref(hub))


def test_every_hub_closes_its_connections_and_is_let_go_with_its_owner(pg: Postgres) -> None:
    before = pgsse_connections(pg)
    held: list[weakref.ref[hubs.Hub]] = []

    def runs() -> None:
        for _ in range(3):
            asyncio.run(_owned_by_the_caller(held))
            asyncio.run(_owned_by_the_loop(held))

    # In a thread of its own: the test's own loop (pytest-asyncio) is not involved.
    runner = threading.Thread(target=runs)
    runner.start()
    runner.join(120)
    assert not runner.is_alive()
    assert len(held) == 6
    gc.collect()
    assert [ref() for ref in held] == [None] * 6  # nothing, no registry, holds them
    assert wait_until_closed(pg, before) == []


async def test_each_connection_says_what_it_is(pg: Postgres) -> None:
    before = pgsse_connections(pg)
    async with hubs.Hub.from_django() as hub:
        await _stream_once(hub)
        names = opened_since(pg, before)
        host_and_pid = f"{os.uname().nodename}:{os.getpid()}"
        # One listener; one or two log readers (the pool grows to two under concurrent reads).
        assert names.count(f"pgsse-listener {host_and_pid}") == 1, names
        assert 1 <= names.count(f"pgsse-reader {host_and_pid}") <= 2, names
        assert len(names) <= 3, names
    assert hub.closed
    assert await asyncio.to_thread(wait_until_closed, pg, before) == []


async def test_a_closed_hub_refuses_streams_and_is_not_replaced() -> None:
    async with hubs.Hub.from_django() as hub:
        pass
    assert hubs.get_hub() is hub  # its owner closed it: no request opens another
    subscription = hub.track(("room:lifecycle",))
    with pytest.raises(hubs.SubscribeTimeout):
        await hub.subscribe(subscription)
    hub.unsubscribe(subscription)
