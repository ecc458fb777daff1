"""A hub's connections against a real PostgreSQL: who opens them, who gives them back.

A hub is closed by whoever started it (the ASGI wrapper's lifespan, a test fixture). One
whose event loop simply ends (``asyncio.run()`` returning) still gives its connections
back, and the registry keeps no hub of a finished loop. Every connection pgsse opens says
what it is in ``application_name``.
"""

from __future__ import annotations

import asyncio
import os
import threading

import psycopg
import pytest

from pgsse import hub as hubs
from tests.postgres import Postgres

pytestmark = pytest.mark.django_db(transaction=True)


def pgsse_connections(pg: Postgres) -> list[str]:
    """application_name of this process's hub connections, as PostgreSQL sees them (not
    the notifier's: it belongs to publishing, and comes and goes with it)."""
    with psycopg.connect(pg.url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE %s"
            " AND application_name NOT LIKE 'pgsse-notifier %%'",
            (f"pgsse-% %:{os.getpid()}",),
        ).fetchall()
    return sorted(name for (name,) in rows)


def wait_for_connections(pg: Postgres, expected: int) -> list[str]:
    """PostgreSQL notices a closed connection a moment after the client closes it."""
    seen = pgsse_connections(pg)
    for _ in range(100):
        if len(seen) == expected:
            break
        threading.Event().wait(0.05)
        seen = pgsse_connections(pg)
    return seen


async def _stream_once(loops: list[asyncio.AbstractEventLoop] | None = None) -> None:
    hub = hubs.get_hub()
    subscription = hub.track(("room:lifecycle",))
    await hub.subscribe(subscription)
    hub.unsubscribe(subscription)
    if loops is not None:
        loops.append(asyncio.get_running_loop())


def test_hubs_of_finished_loops_leave_no_connection_and_no_registry_entry(
    pg: Postgres,
) -> None:
    before = pgsse_connections(pg)  # hubs of other tests' servers may be running
    loops: list[asyncio.AbstractEventLoop] = []

    def five_runs() -> None:
        for _ in range(5):
            asyncio.run(_stream_once(loops))

    # In a thread of its own: the test's own loop (pytest-asyncio) is not involved.
    runner = threading.Thread(target=five_runs)
    runner.start()
    runner.join(60)
    assert not runner.is_alive()
    assert len(loops) == 5
    assert not set(loops) & set(hubs._hubs)
    assert wait_for_connections(pg, len(before)) == before


async def test_each_connection_says_what_it_is(pg: Postgres) -> None:
    await _stream_once()
    hub = hubs.current_hub()
    assert hub is not None
    try:
        names = pgsse_connections(pg)
        host_and_pid = f"{os.uname().nodename}:{os.getpid()}"
        # One listener; one or two log readers (the pool grows to two under concurrent reads).
        assert names.count(f"pgsse-listener {host_and_pid}") == 1, names
        assert 1 <= names.count(f"pgsse-reader {host_and_pid}") <= 2, names
        assert len(names) <= 3, names
    finally:
        await hubs.close_hub()
    assert hubs.current_hub() is None
    assert await asyncio.to_thread(wait_for_connections, pg, 0) == []
