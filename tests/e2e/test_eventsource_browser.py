"""Chromium's EventSource reads pgsse's streams exactly as the spec's parser does.

Two paths: the product's (events published with ``pgsse.publish`` and served by the stream
view, JSON data), and the encoder's alone (``pgsse.sse`` output with raw CR, LF and CRLF in
the data, served by a minimal ASGI app). In both, what the page's ``EventSource`` receives
(type, data, lastEventId) must equal what tests/sse_parser.py makes of the same bytes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from htmx_recipe.views import CHANNEL
from playwright.async_api import BrowserContext, Page, Route

import pgsse
from pgsse import sse
from tests.servers import LiveServer
from tests.sse_parser import Event, EventStreamParser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]

# About 36 KB of JSON: past NOTIFY's 8000-byte limit, within MAX_EVENT_BYTES (64 KiB).
LARGE = ("0123456789abcdé😀" * 6500)[:30_000]

# (event type, data) published on the channel: data is JSON-encoded by pgsse.
PUBLISHED: list[tuple[str, Any]] = [
    ("multi_line", "one\r\ntwo\rthree\nfour\n\n"),
    ("unicode", "été 雪 😀 \u2028 \u2029 \x85 \ufeff"),
    ("sse_looking", "data: fake\n\nevent: evil\nid: 666\nretry: 1\n: comment\n"),
    ("large", LARGE),
    ("empty", ""),
    ("message", {"nested": ["a", 1, None, True], "html": "<b>&amp;</b>"}),
    ("type with spaces: and é", "  leading spaces"),
]

# Raw text through the encoder: data with every line ending, as no JSON would carry it.
RAW: list[tuple[str, str, str | None]] = [
    ("", "plain message, no id", None),
    ("crlf", "a\r\nb\r\n", "1"),
    ("cr", "a\rb\r\rc", None),  # no id: lastEventId stays "1"
    ("lf", "\n\nmiddle\n\n", "2"),
    ("mixed", "\r\n\r\n\n\r", ""),  # an empty id resets lastEventId
    ("looks_like_fields", "data: x\nid: 99\nevent: y\n:comment\nretry: 5", "3"),
    ("spaces", " one leading\n  two leading\n", None),
    ("unicode", "été\r\n雪\r😀\n\u2028\x85\ufeff", "4:é"),
    ("nul_in_data", "a\x00b", None),
    ("empty", "", "5"),
    ("large", ("line\r\n" * 20_000)[:100_000], "6"),
    ("done", "end", "7"),
]

COLLECT = """
({url, types}) => {
  window.received = [];
  const source = new EventSource(url);
  window.source = source;
  for (const type of types) {
    source.addEventListener(type, (event) => {
      window.received.push([event.type, event.data, event.lastEventId]);
      if (event.type === "done") source.close();
    });
  }
}
"""


def _publish_all() -> str:
    """Publish the tricky events after a position; return that position."""
    try:
        position = pgsse.current_position([CHANNEL])
        for event_type, data in PUBLISHED:
            pgsse.publish(CHANNEL, event_type, data)
        return position
    finally:
        connections.close_all()  # the test database is dropped at the end of the session


def _position() -> str:
    try:
        return pgsse.current_position([CHANNEL])
    finally:
        connections.close_all()


async def blank_page(new_context: NewContext, origin: str) -> Page:
    """A page on ``origin`` (so EventSource may reach it) whose HTML is ours."""
    page = await (await new_context()).new_page()

    async def fulfill(route: Route) -> None:
        await route.fulfill(
            body="<!doctype html><title>EventSource</title>", content_type="text/html"
        )

    await page.route(f"{origin}/eventsource-page", fulfill)
    await page.goto(f"{origin}/eventsource-page")
    return page


async def received(page: Page, count: int) -> list[Event]:
    await page.wait_for_function(f"window.received.length >= {count}", timeout=20_000)
    rows = await page.evaluate("window.received")
    return [Event(*row) for row in rows]


async def read_raw(url: str, count: int, headers: dict[str, str] | None = None) -> list[Event]:
    """The first ``count`` events of a stream, read from the socket by the spec's parser."""
    parser = EventStreamParser()
    events: list[Event] = []
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(20)) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        assert response.status_code == 200
        async for chunk in response.aiter_raw():
            events.extend(parser.feed(chunk))
            if len(events) >= count:
                break
    return events


async def test_published_events_reach_eventsource_as_the_spec_parser_reads_them(
    server: LiveServer, new_context: NewContext, settings: Any
) -> None:
    settings.CHAT_HTMX_RECIPE = True  # its board's stream is open to anonymous readers
    position = await sync_to_async(_position)()
    url = f"/htmx/events/?last_event_id={position}"
    page = await blank_page(new_context, server.url)
    types = sorted({event_type for event_type, _ in PUBLISHED})
    await page.evaluate(COLLECT, {"url": url, "types": types})
    reading = asyncio.create_task(read_raw(server.url + url, len(PUBLISHED)))
    await sync_to_async(_publish_all)()

    in_browser = await received(page, len(PUBLISHED))
    by_parser = await reading
    assert in_browser == by_parser
    assert [(e.type, json.loads(e.data)) for e in in_browser] == PUBLISHED
    # Every event carries the stream's position, one seq further each time.
    seqs = [int(e.last_event_id.rsplit(":", 1)[1]) for e in in_browser]
    assert seqs == list(range(seqs[0], seqs[0] + len(PUBLISHED)))
    assert len(in_browser[PUBLISHED.index(("large", LARGE))].data) > 30_000


def raw_stream() -> bytes:
    """The encoder's output for RAW, with a BOM, a retry and comments between events."""
    parts = [b"\xef\xbb\xbf", sse.encode_comment("preamble"), sse.encode_retry(1000)]
    for event_type, data, event_id in RAW:
        parts.append(sse.encode_event(event_type, data, event_id))
        parts.append(sse.encode_comment("between\nevents"))
    return b"".join(parts)


def split_between_cr_and_lf(body: bytes) -> list[bytes]:
    """Chunks cut right after every CR (so CRLF spans two writes) and inside UTF-8 chars."""
    cuts = [i + 1 for i, byte in enumerate(body) if byte == 0x0D][:200]
    cuts += [body.index("😀".encode()) + 2]
    bounds = [0, *sorted(set(cuts)), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds) if a < b]


def raw_sse_app(chunks: list[bytes]) -> Callable[..., Awaitable[None]]:
    """A bare ASGI app: ``/events`` writes ``chunks`` one by one, then stays open."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass

    return app


async def test_raw_line_endings_reach_eventsource_as_the_spec_parser_reads_them(
    new_context: NewContext,
) -> None:
    body = raw_stream()
    chunks = split_between_cr_and_lf(body)
    live = LiveServer(raw_sse_app(chunks)).start()
    try:
        page = await blank_page(new_context, live.url)
        types = sorted({event_type or "message" for event_type, _, _ in RAW})
        await page.evaluate(COLLECT, {"url": "/events", "types": types})
        in_browser = await received(page, len(RAW))
        by_parser = await read_raw(live.url + "/events", len(RAW))
    finally:
        live.stop()
    assert in_browser == by_parser
    last_id = ""
    for event, (event_type, data, event_id) in zip(in_browser, RAW, strict=True):
        last_id = last_id if event_id is None else event_id
        assert event == Event(
            event_type or "message", data.replace("\r\n", "\n").replace("\r", "\n"), last_id
        )
