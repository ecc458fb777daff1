"""The chat's streams end to end: real uvicorn, real sockets, real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from tests.chat_accounts import ChatAccount
from tests.clients import StreamReader, open_stream
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def live(reader: StreamReader) -> bool:
    """The stream has subscribed and told its position (the id-only frame)."""
    return bool(reader.last_id)


async def test_stream_headers_arrive_before_any_event(server: LiveServer) -> None:
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    async with (
        alice.stream_client() as client,
        open_stream(client, "/rooms/lobby/events/") as reader,
    ):
        assert reader.status_code == 200
        assert reader.headers is not None
        assert reader.headers["content-type"].startswith("text/event-stream")
        assert reader.headers["cache-control"] == "no-cache"
        assert reader.headers["x-accel-buffering"] == "no"
        await reader.wait_for(live)
        assert reader.of_type("message_created") == []
    alice.close()


async def test_two_clients_in_a_room_receive_a_post_and_another_room_does_not(
    server: LiveServer,
) -> None:
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    async with (
        alice.stream_client() as client,
        open_stream(client, "/rooms/lobby/events/") as first,
        open_stream(client, "/rooms/lobby/events/") as second,
        open_stream(client, "/rooms/random/events/") as elsewhere,
    ):
        for reader in (first, second, elsewhere):
            await reader.wait_for(live)
        sent = await sync_to_async(alice.say)("lobby", "hello lobby")
        for reader in (first, second):
            await reader.wait_for(lambda r: len(r.messages()) == 1)
            assert reader.messages() == [sent]
        # The other room's stream saw nothing: a message it must get proves it is live.
        marker = await sync_to_async(alice.say)("random", "marker")
        await elsewhere.wait_for(lambda r: len(r.messages()) == 1)
        assert elsewhere.messages() == [marker]
        assert [m["text"] for m in first.messages()] == ["hello lobby"]
    alice.close()


TRICKY_TEXTS = [
    "it's",
    "'; select pg_sleep(2); --",
    "first line\nsecond line\r\nthird\rfourth",
    "emoji 🎉👩‍👩‍👧 and été",
    "data: x\n\nid: 9",
    "  leading spaces and trailing  ",
]


async def test_tricky_messages_arrive_intact_and_sql_in_them_never_runs(
    server: LiveServer,
) -> None:
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    async with (
        alice.stream_client() as client,
        open_stream(client, "/rooms/lobby/events/") as reader,
    ):
        await reader.wait_for(live)
        for text in TRICKY_TEXTS:
            started = time.monotonic()
            sent = await sync_to_async(alice.say)("lobby", text)
            elapsed = time.monotonic() - started
            assert sent["text"] == text
            # Had the text run as SQL, pg_sleep(2) alone would take two seconds.
            assert elapsed < 2.0, f"posting {text!r} took {elapsed:.2f}s"
        await reader.wait_for(lambda r: len(r.messages()) == len(TRICKY_TEXTS))
        assert [m["text"] for m in reader.messages()] == TRICKY_TEXTS
        # Frames stayed whole: exactly one event per message, nothing injected (and the
        # first post's `joined`, on alice's own channel: posting joined the room).
        assert {e.event for e in reader.events} == {"message", "message_created", "joined"}
        assert len(reader.of_type("joined")) == 1
    alice.close()


async def test_reconnect_with_last_event_id_gets_exactly_the_missed_messages(
    server: LiveServer, settings: Any
) -> None:
    # This test posts as fast as it can: lift the chat's per-user rate limit.
    settings.CHAT_RATE_LIMITS = {"message": (1_000_000, 1_000_000, 10.0)}
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    stop = asyncio.Event()
    posted: list[int] = []

    async def post_continuously() -> None:
        n = 0
        while not stop.is_set():
            message = await sync_to_async(bob.say)("lobby", f"bob {n}")
            posted.append(message["id"])
            n += 1

    async with alice.stream_client() as client:
        writer = asyncio.create_task(post_continuously())
        async with open_stream(client, "/rooms/lobby/events/") as first:
            await first.wait_for(live)
            await first.wait_for(lambda r: len(r.messages()) >= 5)
        seen = [m["id"] for m in first.messages()]
        resume_id = first.last_id
        # Disconnected: let messages be posted that this client must get on reconnect.
        await asyncio.sleep(0.3)
        async with open_stream(client, "/rooms/lobby/events/", last_event_id=resume_id) as again:
            await again.wait_for(lambda r: len(r.messages()) >= 5)
            stop.set()
            await writer
            await again.wait_for(lambda r: [m["id"] for m in r.messages()][-1:] == posted[-1:])
            received = seen + [m["id"] for m in again.messages()]
    # Everything posted while streams were open or in between: in order, once.
    first_seen = posted.index(seen[0])
    assert received == posted[first_seen:]
    alice.close()
    bob.close()
