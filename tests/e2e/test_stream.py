"""pgsse's stream end to end (tests/urls.py): real uvicorn, real sockets, real PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.test import override_settings

import pgsse
from pgsse.channels import pg_channel_name
from pgsse.hub import Hub, HubStats
from pgsse.position import canonical_channels, fingerprint, format_position, parse_position
from tests.clients import StreamReader, open_stream, stream_client
from tests.postgres import Postgres
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

publish = sync_to_async(pgsse.publish)


def live(reader: StreamReader) -> bool:
    return bool(reader.last_id)


def payloads(reader: StreamReader, event_type: str = "e") -> list[Any]:
    return [json.loads(e.data) for e in reader.of_type(event_type)]


async def stats(server: LiveServer) -> HubStats:
    return server.on_hub(Hub.stats)


async def test_multi_channel_stream_resumes_every_channel_exactly(
    stream_server: LiveServer,
) -> None:
    channels = canonical_channels(["room:a", "user:7"])
    url = "/multi/?channel=room:a&channel=user:7"
    async with stream_client(stream_server.url) as client:
        async with open_stream(client, url) as reader:
            await reader.wait_for(live)
            for n in range(3):
                await publish("room:a", "e", f"a{n}")
                await publish("user:7", "e", f"u{n}")
            await reader.wait_for(lambda r: len(r.of_type("e")) == 6)
            resume = reader.last_id
        assert parse_position(resume, channels) == {"room:a": 3, "user:7": 3}
        # Ids are per event: the first user:7 event was at room:a 1, user:7 1.
        ids = [e.id for e in reader.of_type("e")]
        assert ids[:2] == [f"{fingerprint(channels)}:1.0", f"{fingerprint(channels)}:1.1"]
        await publish("user:7", "e", "missed u")
        await publish("room:a", "e", "missed a")
        async with open_stream(client, url, last_event_id=ids[1]) as again:
            await again.wait_for(lambda r: len(r.of_type("e")) == 6)
            assert sorted(payloads(again)) == sorted(
                ["a1", "u1", "a2", "u2", "missed u", "missed a"]
            )
            # Per channel, in seq order.
            received = payloads(again)
            assert [p for p in received if p in {"a1", "a2", "missed a"}] == [
                "a1",
                "a2",
                "missed a",
            ]
            assert [p for p in received if p in {"u1", "u2", "missed u"}] == [
                "u1",
                "u2",
                "missed u",
            ]


async def test_query_parameter_and_page_position_start_right_after_the_render(
    stream_server: LiveServer,
) -> None:
    await publish("room:page", "e", "before render")
    position = await sync_to_async(pgsse.current_position)(["room:page"])
    await publish("room:page", "e", "after render")
    async with (
        stream_client(stream_server.url) as client,
        open_stream(client, f"/events/room:page/?last_event_id={position}") as reader,
    ):
        await reader.wait_for(lambda r: bool(r.of_type("e")))
        await reader.wait_for(live)
        assert payloads(reader) == ["after render"]


async def test_header_wins_over_query_parameter(stream_server: LiveServer) -> None:
    for n in range(3):
        await publish("room:h", "e", n)
    one = format_position(("room:h",), {"room:h": 1})
    two = format_position(("room:h",), {"room:h": 2})
    async with (
        stream_client(stream_server.url) as client,
        open_stream(client, f"/events/room:h/?last_event_id={one}", two) as reader,
    ):
        await reader.wait_for(lambda r: bool(r.of_type("e")))
        assert payloads(reader) == [2]


BAD_POSITIONS = {
    "abc": "malformed",
    "-1": "malformed",
    "9" * 40: "malformed",
    "x" * 10_000: "malformed",
}


@pytest.mark.parametrize(("text", "reason"), BAD_POSITIONS.items())
async def test_bad_resume_input_gets_a_reset_and_goes_on_live(
    stream_server: LiveServer, text: str, reason: str
) -> None:
    await publish("room:r", "e", "old")
    async with (
        stream_client(stream_server.url) as client,
        open_stream(client, "/events/room:r/", last_event_id=text) as reader,
    ):
        assert reader.status_code == 200
        await reader.wait_for(lambda r: bool(r.of_type("reset")))
        (reset,) = reader.of_type("reset")
        assert json.loads(reset.data)["reason"] == reason
        assert reset.id == format_position(("room:r",), {"room:r": 1})
        await publish("room:r", "e", "new")
        await reader.wait_for(lambda r: bool(r.of_type("e")))
        assert payloads(reader) == ["new"]


async def test_positions_of_other_streams_the_future_and_the_pruned_past_reset(
    stream_server: LiveServer,
) -> None:
    for n in range(20):
        await publish("room:p", "e", n)
    other = format_position(canonical_channels(["room:p", "x:y"]), {"room:p": 1, "x:y": 0})
    future = format_position(("room:p",), {"room:p": 21})
    with override_settings(PGSSE={"RETENTION": {"": {"max_events": 5}}}):
        await sync_to_async(call_command)("pgsse_prune", stdout=io.StringIO())
    expired = format_position(("room:p",), {"room:p": 14})
    retained = format_position(("room:p",), {"room:p": 15})
    async with stream_client(stream_server.url) as client:
        for position, reason in ((other, "channels"), (future, "future"), (expired, "expired")):
            async with open_stream(client, "/events/room:p/", last_event_id=position) as reader:
                await reader.wait_for(lambda r: bool(r.of_type("reset")))
                assert json.loads(reader.of_type("reset")[0].data)["reason"] == reason
                assert reader.of_type("e") == []
        # Pruning kept the last 5: a client at 15 still resumes without a reset.
        async with open_stream(client, "/events/room:p/", last_event_id=retained) as reader:
            await reader.wait_for(lambda r: len(r.of_type("e")) == 5)
            assert payloads(reader) == [15, 16, 17, 18, 19]
            assert reader.of_type("reset") == []


async def test_an_empty_last_event_id_starts_live_without_reset(stream_server: LiveServer) -> None:
    await publish("room:empty", "e", "old")
    async with (
        stream_client(stream_server.url) as client,
        open_stream(client, "/events/room:empty/", last_event_id="") as reader,
    ):
        await reader.wait_for(live)
        await publish("room:empty", "e", "new")
        await reader.wait_for(lambda r: bool(r.of_type("e")))
        assert payloads(reader) == ["new"]
        assert reader.of_type("reset") == []


# JSON text of 2 + size bytes on channel room:big, type e: up to 7,946 bytes of it fit in
# the NOTIFY payload beside the head (a seq and a timestamp, at most 40 characters) and the
# names (8000 bytes in all).
@pytest.mark.parametrize(
    ("size", "by_reference"),
    [
        (100, False),
        (4_000, False),
        (7_944, False),  # the largest sent inline
        (7_946, True),  # the smallest sent by reference
        (8_000, True),
        (60_000, True),
    ],
)
async def test_large_events_arrive_intact_and_are_read_once_per_process(
    stream_server: LiveServer, size: int, by_reference: bool
) -> None:
    text = "é" * (size // 2)  # two bytes each in UTF-8
    async with stream_client(stream_server.url) as client:
        readers = [await _enter(client, "/events/room:big/") for _ in range(10)]
        for stream in readers:
            await stream[1].wait_for(live)
        before = await stats(stream_server)
        await publish("room:big", "e", text)
        for _, reader in readers:
            await reader.wait_for(lambda r: bool(r.of_type("e")))
            assert payloads(reader) == [text]
        after = await stats(stream_server)
        for context, _ in readers:
            await context.__aexit__(None, None, None)
    # Inline below the payload limit: no read of the log at all. By reference above it:
    # one read, not one per client. (A listener that reconnected meanwhile, as happens on
    # a loaded machine, fills its gap from the log: one read more.)
    expected = 1 if by_reference else 0
    if after.listener_connections != before.listener_connections:
        expected += 1
    assert after.log_reads - before.log_reads <= expected
    assert after.log_reads - before.log_reads >= (1 if by_reference else 0)


async def _enter(client: httpx.AsyncClient, url: str) -> tuple[Any, StreamReader]:
    context = open_stream(client, url)
    return context, await context.__aenter__()


async def test_bad_requests_get_clear_errors_before_any_stream(stream_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=stream_server.url, timeout=10) as client:
        cases = {
            ("GET", "/events/room%20lobby/"): (400, "whitespace"),
            ("GET", "/events/secret:plans/"): (403, "may not read"),
            ("OPTIONS", "/events/room:a/"): (405, "only answers GET"),
            ("HEAD", "/events/room:a/"): (405, ""),
            ("POST", "/events/room:a/"): (403, "CSRF"),
            ("GET", "/multi/"): (400, "No channel"),
            ("GET", "/multi/?" + "&".join(f"channel=c{n}" for n in range(17))): (429, "at most 16"),
            ("GET", "/private/room:a/"): (403, "may not read"),
            # Hooks raising Http404 / PermissionDenied, answered by error_response().
            ("GET", "/json/?room=nowhere"): (404, '{"error": "There is no room \'nowhere\'."}'),
            ("GET", "/json/?room=closed"): (403, '{"error": "Room \'closed\' is closed."}'),
        }
        for (method, url), (status, message) in cases.items():
            response = await client.request(method, url)
            assert (response.status_code, message in response.text) == (status, True), url
        # No Accept header at all (curl's default is */*): still a stream.
        async with client.stream("GET", "/events/room:a/", headers={"Accept": ""}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")


async def test_foreign_notifications_are_ignored_and_no_stream_dies(
    stream_server: LiveServer, pg: Postgres
) -> None:
    async with (
        stream_client(stream_server.url) as client,
        open_stream(client, "/events/room:f/") as reader,
    ):
        await reader.wait_for(live)
        await publish("room:f", "e", 1)
        garbage = [
            "",
            "hello",
            "1",
            "x\troom:f",
            "2\troom:f\te",
            '99999\troom:f\te\t"forged"',
            "3\troom:other\te\t1",
            "\x01\t\t\t",
            "2\troom:f\tev\rx\t1",  # a type that would break the SSE frame
        ]
        async with await psycopg.AsyncConnection.connect(pg.url, autocommit=True) as conn:
            for payload in garbage:
                await conn.execute("SELECT pg_notify(%s, %s)", (pg_channel_name("room:f"), payload))
        await publish("room:f", "e", 2)
        await publish("room:f", "e", 3)
        await reader.wait_for(lambda r: len(r.of_type("e")) == 3)
        assert payloads(reader) == [1, 2, 3]
        assert not reader.ended
    assert (await stats(stream_server)).foreign_notifications >= 6


async def test_an_event_whose_notification_never_came_is_delivered_by_the_sweep(
    stream_server: LiveServer,
) -> None:
    async with (
        stream_client(stream_server.url) as client,
        open_stream(client, "/events/room:lost/") as reader,
    ):
        await reader.wait_for(live)
        # As if the process crashed between commit and notify: the row, no notification.
        await sync_to_async(_append_without_notify)("room:lost", "e", '"silent"')
        await reader.wait_for(lambda r: bool(r.of_type("e")), timeout=5)  # SWEEP_INTERVAL 1 s
        assert payloads(reader) == ["silent"]


def _append_without_notify(channel: str, event_type: str, data: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH next AS (
                INSERT INTO pgsse_channel AS c (name, last_seq) VALUES (%s, 1)
                ON CONFLICT (name) DO UPDATE SET last_seq = c.last_seq + 1
                RETURNING c.last_seq
            )
            INSERT INTO pgsse_event (channel, seq, type, data, created_at)
            SELECT %s, last_seq, %s, %s, now() FROM next
            """,
            (channel, channel, event_type, data),
        )


async def test_idle_streams_get_heartbeats_at_the_configured_interval(
    pg: Postgres, transactional_db: None, stream_app: Callable[[], Any]
) -> None:
    with override_settings(ROOT_URLCONF="tests.urls", PGSSE={"HEARTBEAT_INTERVAL": 0.2}):
        server = LiveServer(stream_app()).start()
        try:
            async with (
                httpx.AsyncClient(base_url=server.url, timeout=10) as client,
                client.stream("GET", "/events/room:quiet/") as response,
            ):
                received = b""
                async for chunk in response.aiter_bytes():
                    received += chunk
                    if received.count(b":\n\n") >= 3:
                        break
        finally:
            server.stop()
    # Preamble comment and retry first, then the position, then bare comment heartbeats.
    assert received.startswith(b": pgsse ")
    assert b"retry: 2000\n\n" in received
    assert received.count(b":\n\n") >= 3


async def test_streams_per_user_are_bounded(
    pg: Postgres, transactional_db: None, stream_app: Callable[[], Any]
) -> None:
    from django.contrib.auth.models import User
    from django.test import Client

    user = await sync_to_async(User.objects.create_user)("ada", password="x-long-password-1")
    browser = Client()
    await sync_to_async(browser.force_login)(user)
    cookies = {"sessionid": browser.cookies["sessionid"].value}
    with override_settings(ROOT_URLCONF="tests.urls", PGSSE={"MAX_STREAMS_PER_USER": 2}):
        server = LiveServer(stream_app()).start()
        try:
            async with stream_client(server.url) as client:
                client.cookies.update(cookies)
                async with (
                    open_stream(client, "/private/room:a/") as first,
                    open_stream(client, "/private/room:b/") as second,
                ):
                    await first.wait_for(live)
                    await second.wait_for(live)
                    refused = await client.get("/private/room:c/")
                    assert refused.status_code == 429
                    assert "2 streams open" in refused.text
                    assert refused.headers["retry-after"] == "2"
                    async with httpx.AsyncClient(base_url=server.url) as stranger:
                        anonymous = await stranger.get("/private/room:c/")
                    assert anonymous.status_code == 403
                # Closed streams free their places at once.
                async with open_stream(client, "/private/room:c/") as third:
                    await third.wait_for(live)
                    assert third.status_code == 200
        finally:
            server.stop()


async def test_streams_bypass_gzip_middleware(
    pg: Postgres, transactional_db: None, stream_app: Callable[[], Any]
) -> None:
    from django.conf import settings

    middleware = ["django.middleware.gzip.GZipMiddleware", *settings.MIDDLEWARE]
    with override_settings(ROOT_URLCONF="tests.urls", MIDDLEWARE=middleware):
        server = LiveServer(stream_app()).start()
        try:
            async with stream_client(server.url) as client:
                client.headers["Accept-Encoding"] = "gzip"
                async with open_stream(client, "/events/room:gz/") as reader:
                    await reader.wait_for(live)
                    assert reader.headers is not None
                    assert reader.headers.get("content-encoding") == "identity"
                    await publish("room:gz", "e", "not compressed")
                    await reader.wait_for(lambda r: bool(r.of_type("e")))
                    assert payloads(reader) == ["not compressed"]
        finally:
            server.stop()


async def test_lossy_channels_skip_pruned_events_instead_of_resetting(
    stream_server: LiveServer,
) -> None:
    retention = {"": {"max_events": 1000}, "typing:": {"max_events": 2, "lossy": True}}
    for n in range(6):
        await publish("typing:x", "e", n)
        await publish("room:x", "e", n)
    with override_settings(PGSSE={"RETENTION": retention}):
        await sync_to_async(call_command)("pgsse_prune", stdout=io.StringIO())
        channels = canonical_channels(["room:x", "typing:x"])
        old = format_position(channels, {"room:x": 1, "typing:x": 1})
        url = "/multi/?channel=room:x&channel=typing:x"
        async with (
            stream_client(stream_server.url) as client,
            open_stream(client, url, last_event_id=old) as reader,
        ):
            await reader.wait_for(live)
            await reader.wait_for(lambda r: len(r.of_type("e")) == 5)
            assert reader.of_type("reset") == []
            # The room replays in full; the pruned typing notices are skipped.
            assert payloads(reader) == [1, 2, 3, 4, 5]
            # The id-only frame after the replay carries the skipped-to position.
            await reader.wait_for(
                lambda r: parse_position(r.last_id, channels) == {"room:x": 6, "typing:x": 6}
            )


async def test_a_hole_in_the_log_is_a_reset_not_a_silent_skip(stream_server: LiveServer) -> None:
    for n in range(1, 11):
        await publish("room:hole", "e", n)
    await sync_to_async(_delete_event)("room:hole", 5)  # by hand, not by pruning
    start = format_position(("room:hole",), {"room:hole": 2})
    async with (
        stream_client(stream_server.url) as client,
        open_stream(client, "/events/room:hole/", last_event_id=start) as reader,
    ):
        await reader.wait_for(lambda r: bool(r.of_type("reset")))
        assert json.loads(reader.of_type("reset")[0].data)["reason"] == "expired"
        assert payloads(reader) == []


def _delete_event(channel: str, seq: int) -> None:
    from pgsse.models import Event

    Event.objects.filter(channel=channel, seq=seq).delete()


async def test_concurrent_streams_of_one_user_respect_the_limit(
    pg: Postgres, transactional_db: None, stream_app: Callable[[], Any]
) -> None:
    from django.contrib.auth.models import User
    from django.test import Client

    user = await sync_to_async(User.objects.create_user)("bea", password="x-long-password-1")
    browser = Client()
    await sync_to_async(browser.force_login)(user)
    with override_settings(ROOT_URLCONF="tests.urls", PGSSE={"MAX_STREAMS_PER_USER": 2}):
        server = LiveServer(stream_app()).start()
        try:
            async with stream_client(server.url) as client:
                client.cookies.update({"sessionid": browser.cookies["sessionid"].value})
                requests = [client.stream("GET", f"/private/room:{n}/") for n in range(6)]
                responses = await asyncio.gather(*(r.__aenter__() for r in requests))
                statuses = sorted(response.status_code for response in responses)
                for request in requests:
                    await request.__aexit__(None, None, None)
        finally:
            server.stop()
    assert statuses == [200, 200, 429, 429, 429, 429]


async def test_streams_work_under_atomic_requests(stream_server: LiveServer) -> None:
    from django.db import connections

    # Request threads build their connections from this dict.
    connections.settings["default"]["ATOMIC_REQUESTS"] = True
    try:
        async with (
            stream_client(stream_server.url) as client,
            open_stream(client, "/events/room:atomic/") as reader,
        ):
            assert reader.status_code == 200
            await reader.wait_for(live)
    finally:
        connections.settings["default"]["ATOMIC_REQUESTS"] = False
