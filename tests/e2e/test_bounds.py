"""Every resource bound, met by a client that pushes it: what one open may replay, how often
a user or an address may open, and a row of the log that cannot be sent.

Streams are opened through the project's ASGI application with pgsse.testing's
StreamClient, on the real hub and database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connection, connections
from django.test import override_settings

from pgsse import publish_many
from pgsse.hub import current_hub
from pgsse.position import canonical_channels, format_position
from pgsse.subscription import EndReason
from pgsse.testing import StreamClient
from tests import asgi

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def client(request: pytest.FixtureRequest) -> AsyncIterator[StreamClient]:
    """A client of the test project; ``@pytest.mark.pgsse(KEY=value)`` sets its hub's
    settings (read when the hub opens)."""
    marker = request.node.get_closest_marker("pgsse")
    pgsse = {**(marker.kwargs if marker else {})}
    from django.conf import settings

    with override_settings(ROOT_URLCONF="tests.urls", PGSSE={**settings.PGSSE, **pgsse}):
        async with StreamClient(asgi.application) as opened:
            yield opened


def published(channel: str, count: int, size: int) -> None:
    try:
        publish_many([(channel, "e", {"n": n, "pad": "x" * size}) for n in range(count)])
    finally:
        connections.close_all()


@pytest.mark.pgsse(MAX_REPLAY_BYTES=64 * 1024)
async def test_one_open_replays_a_bounded_part_and_the_reconnects_the_rest(
    client: StreamClient,
) -> None:
    await sync_to_async(published)("room:far", 300, 1000)  # 300 KB behind
    position = format_position(canonical_channels(["room:far"]), {"room:far": 0})
    received: list[int] = []
    opens = 0
    while len(received) < 300:
        opens += 1
        stream = await client.open("/events/room:far/", last_event_id=position)
        await stream.started()
        assert stream.status == 200
        while len(received) < 300:
            try:
                event = await stream.next_event()
            except TimeoutError:
                break  # the server ended this open: reconnect from where it stopped
            received.append(event.json()["n"])
            position = event.id
        await stream.close()
        assert opens < 20
    assert received == list(range(300))  # each once, in order, across the reconnects
    assert 4 <= opens <= 7  # about 64 KB each
    hub = current_hub()
    assert hub is not None
    assert hub.stats().streams_closed.get(EndReason.REPLAY_LIMIT, 0) >= opens - 1


@pytest.mark.pgsse(OPENS_PER_MINUTE_PER_USER=6, OPENS_PER_MINUTE_PER_ADDRESS=None)
async def test_a_user_opening_too_often_is_told_when_to_come_back(client: StreamClient) -> None:
    ada = await sync_to_async(User.objects.create_user)("ada")
    await client.force_login(ada)
    for _ in range(2):  # a third of the minute's allowance, at once
        async with client.stream("/private/room:rate/"):
            pass
    refused = await client.assert_refused("/private/room:rate/", 429, "at most 6 a minute")
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    # Refused opens count too: hitting a refused URL does not reset the allowance.
    await client.assert_refused("/private/secret:x/", 429)


@pytest.mark.pgsse(OPENS_PER_MINUTE_PER_ADDRESS=3)
async def test_an_address_opening_too_often_is_refused_before_any_work(
    client: StreamClient,
) -> None:
    await client.assert_refused("/json/?room=nowhere", 404)  # the view's own answer
    refused = await client.assert_refused("/json/?room=nowhere", 429, "at most 3 a minute")
    assert refused.headers["content-type"].startswith("text/plain")  # not the view's JSON
    assert "retry-after" in refused.headers


def corrupt(channel: str, seq: int) -> None:
    """A row pgsse could not have written: a line break in its type (an edit by hand)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE pgsse_event SET type = %s WHERE channel = %s AND seq = %s",
                ["bad\ntype", channel, seq],
            )
    finally:
        connections.close_all()


def appended_by_hand(channel: str, event_type: str) -> None:
    """An event appended without a notification: only the sweep finds it."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE pgsse_channel SET last_seq = last_seq + 1 WHERE name = %s"
                " RETURNING last_seq",
                [channel],
            )
            (seq,) = cursor.fetchone()
            cursor.execute(
                "INSERT INTO pgsse_event (channel, seq, type, data, created_at)"
                " VALUES (%s, %s, %s, '{}', now())",
                [channel, seq, event_type],
            )
    finally:
        connections.close_all()


async def test_a_row_that_cannot_be_sent_is_skipped_by_replays_and_by_live_delivery(
    client: StreamClient,
) -> None:
    await sync_to_async(published)("room:row", 3, 10)
    await sync_to_async(corrupt)("room:row", 2)
    start = format_position(canonical_channels(["room:row"]), {"room:row": 0})
    async with client.stream("/events/room:row/", last_event_id=start) as stream:
        first, third = await stream.events(2)
        assert [first.json()["n"], third.json()["n"]] == [0, 2]  # seq 2 became an id only
        # Live: the sweep catches up across another such row, and goes on after it.
        await sync_to_async(appended_by_hand)("room:row", "bad\ntype")
        await sync_to_async(published)("room:row", 1, 10)
        after = await stream.next_event(timeout=15)
        assert after.json()["n"] == 0
        assert after.id == format_position(canonical_channels(["room:row"]), {"room:row": 5})
    hub = current_hub()
    assert hub is not None
    assert hub.stats().failures >= 1  # each logged


@pytest.mark.pgsse(REPLAY_BATCH=5, READ_CACHE_BYTES=30_000, READ_CACHE_SECONDS=1.0)
async def test_reads_kept_for_other_streams_are_bounded_in_bytes_and_age(
    client: StreamClient,
) -> None:
    await sync_to_async(published)("room:cache", 50, 2000)  # ten reads of 10 KB
    start = format_position(canonical_channels(["room:cache"]), {"room:cache": 0})
    async with client.stream("/events/room:cache/", last_event_id=start) as stream:
        await stream.events(50)
    hub = current_hub()
    assert hub is not None
    reader = hub.reader
    assert 10_000 <= reader.cached_bytes <= 30_000  # type: ignore[attr-defined]
    async with asyncio.timeout(10):  # the clock expires them, though nobody reads
        while reader.cached_bytes:  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
