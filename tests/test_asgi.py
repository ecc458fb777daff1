"""pgsse.asgi.wrap() driven directly as a server would (no socket): who owns a stream and
its admission place when a request ends early, and what is sent after a disconnect.

A place is the stream's from admission until it ends: whatever happens to the request
(a client that leaves, a task cancelled mid request phase, as daphne cancels ~10 s after
a client left), it is given back; a reconnect storm must not ratchet a process to 429/503.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import pytest
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.test import override_settings

import pgsse.asgi
from pgsse.hub import Hub
from pgsse.takeover import Takeover
from tests.gate import GATES, Gate

pytestmark = [pytest.mark.django_db(transaction=True)]

Message = MutableMapping[str, Any]


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    """The hub of the test's loop, opened and closed by the test (as lifespan would)."""
    with override_settings(ROOT_URLCONF="tests.urls"):
        async with Hub.from_django() as opened:
            yield opened


@pytest.fixture
def gate() -> Iterator[Gate]:
    held = GATES["held"] = Gate("held")
    yield held
    held.release()
    del GATES["held"]


def scope(path: str) -> Message:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


class Client:
    """One request: the body at once, then a disconnect when told; what the app sent."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.left = asyncio.Event()
        self.sent_after_leaving = 0
        self._asked = False

    async def receive(self) -> Message:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.left.is_set():
            self.sent_after_leaving += 1
        self.sent.append(message)

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


async def until(condition: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_request_cancelled_in_its_request_phase_gives_its_place_back(
    hub: Hub, gate: Gate
) -> None:
    app = pgsse.asgi.wrap(get_asgi_application())
    gate.hold()
    client = Client()
    request = asyncio.ensure_future(app(scope("/held/held/room:a/"), client.receive, client.send))
    assert await asyncio.to_thread(gate.entered.wait, 10)  # the view is about to run
    request.cancel()  # the server gives up on the request (daphne, a client gone)
    await asyncio.gather(request, return_exceptions=True)
    gate.release()
    assert await asyncio.to_thread(gate.left.wait, 10)  # the view admitted and handed over
    await until(lambda: hub.admission.open == 0)
    assert hub.admission.by_client == {}
    assert client.sent == []


async def test_nothing_is_sent_after_the_client_disconnected(hub: Hub) -> None:
    app = pgsse.asgi.wrap(get_asgi_application())
    client = Client()
    request = asyncio.ensure_future(app(scope("/events/room:gone/"), client.receive, client.send))
    await until(lambda: b"\nid: " in client.body())  # live
    client.left.set()
    await asyncio.wait_for(request, 10)
    assert client.sent_after_leaving == 0
    assert hub.admission.open == 0


async def test_a_stream_request_with_a_body_is_refused_before_authentication(
    hub: Hub,
) -> None:
    app = pgsse.asgi.wrap(get_asgi_application())
    sent: list[Message] = []
    parts = iter([b"x" * 10_000, b"x" * 10_000])

    async def receive() -> Message:
        return {"type": "http.request", "body": next(parts), "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope("/private/room:a/"), receive, send), 10)
    assert sent[0]["status"] == 413
    assert b"carries no body" in sent[1]["body"]


async def test_a_request_whose_client_left_while_it_waited_for_a_thread_is_skipped(
    hub: Hub, gate: Gate
) -> None:
    """In a reconnect storm requests queue for the request phase's threads: one whose client
    gave up meanwhile is not run (its hooks, its queries) for nobody."""
    with override_settings(PGSSE={**settings.PGSSE, "SETUP_CONCURRENCY": 1}):
        app = pgsse.asgi.wrap(get_asgi_application())
        gate.hold()
        first, second = Client(), Client()
        scopes = scope("/held/held/room:a/"), scope("/held/held/room:b/")
        requests = [
            asyncio.ensure_future(app(s, c.receive, c.send))
            for s, c in zip(scopes, (first, second), strict=True)
        ]
        assert await asyncio.to_thread(gate.entered.wait, 10)  # the one thread is taken
        await until(lambda: Takeover.SCOPE_KEY in scopes[1])  # the second one waits for it
        second.left.set()
        await until(lambda: scopes[1][Takeover.SCOPE_KEY].client_left)
        gate.release()
        await asyncio.wait_for(requests[1], 10)
        assert second.sent == []
        await until(lambda: b"\nid: " in first.body())  # the first one is served
        assert len(gate.seen) == 1  # the second one's view never ran
        assert hub.admission.open == 1
        first.left.set()
        await asyncio.wait_for(requests[0], 10)
    await until(lambda: hub.admission.open == 0)
