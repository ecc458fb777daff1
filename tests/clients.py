"""Real HTTP clients for the tests: a chat user that posts, and SSE readers.

SSE responses are read from real sockets with httpx; httpx-sse parses the frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse


class ChatUser:
    """A browser-like session: display name chosen, CSRF token at hand."""

    def __init__(self, base_url: str, name: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=30)
        self.client.get("/rooms/lobby/").raise_for_status()
        self.token = self.client.cookies["csrftoken"]
        response = self.client.post(
            "/name/", data={"name": name}, headers={"X-CSRFToken": self.token}
        )
        assert response.status_code == 302, response.text

    def post(self, room: str, text: str) -> httpx.Response:
        return self.client.post(
            f"/rooms/{room}/messages/", data={"text": text}, headers={"X-CSRFToken": self.token}
        )

    def say(self, room: str, text: str) -> dict[str, Any]:
        response = self.post(room, text)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    def close(self) -> None:
        self.client.close()


@dataclass
class StreamReader:
    """Collects the events of one open stream in the background."""

    events: list[ServerSentEvent] = field(default_factory=list)
    status_code: int = 0
    headers: httpx.Headers | None = None
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False

    @property
    def last_id(self) -> str:
        return next((e.id for e in reversed(self.events) if e.id), "")

    def of_type(self, event_type: str) -> list[ServerSentEvent]:
        return [e for e in self.events if e.event == event_type]

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(e.data) for e in self.of_type("message_created")]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds; fail with what was received otherwise."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.ended:
                raise AssertionError(f"stream condition not met; got {self.events!r}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


async def _read(
    client: httpx.AsyncClient, url: str, reader: StreamReader, headers: dict[str, str]
) -> None:
    try:
        async with aconnect_sse(client, "GET", url, headers=headers) as source:
            reader.status_code = source.response.status_code
            reader.headers = source.response.headers
            reader.opened.set()
            async for event in source.aiter_sse():
                reader.events.append(event)
                reader.changed.set()
    finally:
        reader.ended = True
        reader.opened.set()
        reader.changed.set()


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, url: str, last_event_id: str | None = None
) -> AsyncIterator[StreamReader]:
    """Open an SSE stream and collect its events until the block ends."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    reader = StreamReader()
    task = asyncio.create_task(_read(client, url, reader, headers))
    await asyncio.wait_for(reader.opened.wait(), 30)
    try:
        yield reader
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await task


def stream_client(base_url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30, read=None), limits=limits)
