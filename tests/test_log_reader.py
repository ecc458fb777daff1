"""The hub's log reader against the real database: its connections come and go."""

from __future__ import annotations

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections

from pgsse import publish
from pgsse.conf import get_settings
from pgsse.connection import connection_kwargs, identify
from pgsse.log_reader import LogReader
from pgsse.stats import Counters

pytestmark = pytest.mark.django_db(transaction=True)


def published(channel: str) -> None:
    try:
        publish(channel, "e", 1)
    finally:
        connections.close_all()


def terminate_readers() -> int:
    """End this process's reader sessions from the server's side (a restart, a DBA)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (identify("reader")["application_name"],),
        ).fetchall()
    return len(rows)


async def test_a_connection_the_server_closed_meanwhile_is_replaced_unseen() -> None:
    await sync_to_async(published)("room:reader")
    conninfo = {**connection_kwargs(connection.settings_dict), **identify("reader")}
    reader = LogReader(conninfo, get_settings(), Counters())
    await reader.open()
    try:
        assert (await reader.heads(["room:reader"]))["room:reader"].last_seq == 1
        assert await sync_to_async(terminate_readers)() == 1
        # The idle connection is dead; the read goes on on a new one.
        assert (await reader.heads(["room:reader"]))["room:reader"].last_seq == 1
        assert [e.seq for e in await reader.events_after("room:reader", 0, 1)] == [1]
    finally:
        await reader.close()
