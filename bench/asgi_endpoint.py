"""pgsse's stream core behind a plain ASGI endpoint, without Django's request handling.

``uvicorn bench.asgi_endpoint:application``: the hub and :class:`pgsse.stream.Stream`
exactly as the Django view uses them, sent with bare ASGI messages. pgsse does not ship
such an endpoint; DESIGN.md proposes one (mounted beside Django by the ASGI wrapper) as
the fast path, and this measures what it would save. No authorization and no
``Last-Event-ID``: every stream starts live on the channel named in the path.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from pgsse.hub import Hub, get_hub  # noqa: E402  (needs Django set up)
from pgsse.position import canonical_channels  # noqa: E402
from pgsse.stream import Stream  # noqa: E402

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


async def stream_endpoint(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    channel = scope["path"].removeprefix("/events/").rstrip("/")
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    # An async generator (typed as an iterator): closed below, so its ``finally`` runs.
    stream = Stream(get_hub(), canonical_channels([channel])).chunks()

    async def pump() -> None:
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def until_disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    # The stream ends on whichever comes first: it ends, or the client goes away.
    tasks = {asyncio.ensure_future(pump()), asyncio.ensure_future(until_disconnected())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await stream.aclose()


async def application(scope: Any, receive: Any, send: Any) -> None:
    """The endpoint, and a lifespan that owns the hub (not pgsse.asgi.wrap(), whose
    takeover of StreamView routes this endpoint does without)."""
    if scope["type"] != "lifespan":
        await stream_endpoint(scope, receive, send)
        return
    async with Hub.from_django() as hub:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await hub.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
