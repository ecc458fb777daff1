"""Real HTTP clients for the tests: SSE readers (chat users live in tests/chat_accounts.py).

SSE responses are read from real sockets with httpx; httpx-sse parses the frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Self

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from tests.chunked import ChunkedDecoder
from tests.sse_parser import Event, EventStreamParser


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


class ResumingReader:
    """A stream client that reconnects with ``Last-Event-ID``, as a browser does.

    ``events`` holds every event of every connection; ``server_closes`` counts the times
    a connection ended without the client asking.
    """

    def __init__(self, client: httpx.AsyncClient, url: str, event_type: str = "e") -> None:
        self.client = client
        self.url = url
        self.event_type = event_type
        self.events: list[ServerSentEvent] = []
        #: time.monotonic() at which each event of ``event_type`` arrived.
        self.received_at: list[float] = []
        self.last_id = ""
        self.connections = 0
        self.server_closes = 0
        self.live = asyncio.Event()
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def payloads(self) -> list[Any]:
        return [json.loads(e.data) for e in self.events if e.event == self.event_type]

    @property
    def count(self) -> int:
        """Events of ``event_type`` received so far (cheap, unlike :meth:`payloads`)."""
        return len(self.received_at)

    def start(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"condition not met after {timeout}s: {len(self.events)} events, "
                    f"{self.connections} connections, {self.server_closes} server closes"
                )
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.5))

    async def _run(self) -> None:
        while True:
            headers = {"Accept": "text/event-stream"}
            if self.last_id:
                headers["Last-Event-ID"] = self.last_id
            try:
                async with aconnect_sse(self.client, "GET", self.url, headers=headers) as source:
                    if source.response.status_code == 200:
                        self.connections += 1
                        async for event in source.aiter_sse():
                            if event.id:
                                self.last_id = event.id
                                self.live.set()
                            if event.event == self.event_type:
                                self.received_at.append(time.monotonic())
                            if event.event == self.event_type or event.event == "reset":
                                self.events.append(event)
                            self.changed.set()
                        self.server_closes += 1
            except httpx.HTTPError:
                self.server_closes += 1
            self.changed.set()
            await asyncio.sleep(0.05)


class LightReader(ResumingReader):
    """:class:`ResumingReader` over a bare asyncio connection, for many clients at once.

    It speaks just enough HTTP/1.1 (one GET, a chunked body: tests/chunked.py) and reads the
    frames with the spec's parser (tests/sse_parser.py), keeping the client's cost per
    event small.
    """

    def __init__(self, base_url: str, path: str, event_type: str = "e") -> None:
        super().__init__(httpx.AsyncClient(), path, event_type)
        host_port = base_url.removeprefix("http://")
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        #: One entry per connection: the Last-Event-ID it was opened with, and what it
        #: received as (kind, id, data): kind is the event type, or "" for an id-only frame.
        self.segments: list[tuple[str, list[tuple[str, str, str]]]] = []
        #: Connections the server ended properly (final chunk) right after a ``retry:``.
        self.clean_ends = 0
        #: Opens answered with something else than 200 (busy, rate-limited): not closes.
        self.refusals = 0
        self._writer: asyncio.StreamWriter | None = None
        self._last_was_retry = False

    def reconnect(self, last_event_id: str) -> None:
        """Drop the connection; the next one resumes from ``last_event_id``."""
        self.last_id = last_event_id
        if self._writer is not None:
            self._writer.close()

    async def stop(self) -> None:
        await super().stop()
        await self.client.aclose()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
                if await self._connect_once():
                    self.server_closes += 1
            self.changed.set()
            await asyncio.sleep(0.05)

    async def _connect_once(self) -> bool:
        """One connection: True if it was a stream the server ended, False if refused."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._writer = writer
        try:
            resume = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id else ""
            writer.write(
                f"GET {self.url} HTTP/1.1\r\nHost: {self.host}\r\n{resume}"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                self.refusals += 1
                return False
            self.connections += 1
            self.segments.append((self.last_id, []))
            body, frames = ChunkedDecoder(), EventStreamParser(every_frame=True)
            while not body.ended and (data := await reader.read(65536)):
                for frame in frames.feed(body.feed(data)):
                    self._frame(frame)
                self.changed.set()
            if body.ended and self._last_was_retry:
                self.clean_ends += 1
            return True
        finally:
            writer.close()

    def _frame(self, frame: Event) -> None:
        self._last_was_retry = "retry" in frame.fields
        if "id" in frame.fields:
            self.last_id = frame.last_event_id
            self.live.set()
            kind = frame.type if "event" in frame.fields else ""
            self.segments[-1][1].append((kind, self.last_id, frame.data))
        if "data" in frame.fields and frame.type == self.event_type:
            self.received_at.append(time.monotonic())
            self.events.append(
                ServerSentEvent(event=self.event_type, data=frame.data, id=self.last_id)
            )
