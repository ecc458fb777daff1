"""Taking a stream over from Django's handler, so that an open stream holds no thread.

Django runs every ASGI request inside a thread-sensitive context whose executor thread
lives as long as the response: an open stream would hold an OS thread for hours. Under
``pgsse.asgi.wrap()`` a stream is served in two parts instead:

1. Django's handler runs the request as usual (``request_started``, every middleware, the
   ``StreamView``'s hooks, ``process_response``, ``request_finished``). The view hands its
   :class:`~pgsse.stream.Stream` to the :class:`Takeover` in the scope and answers with an
   empty streaming response carrying :data:`TAKEOVER_HEADER`. The wrapper withholds that
   response's messages, Django's handler returns, and its context and thread end.
2. The wrapper sends the withheld ``http.response.start`` (status and headers exactly as
   the middleware left them, cookies included, the marker removed) and then the stream's
   bytes as bare ``http.response.body`` messages, on the server's own task.

A middleware that replaces the view's response (a redirect, a 403) replaces the marker
too: the wrapper then forwards that response untouched and gives the stream's place back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgsse.hub import Hub
    from pgsse.stream import Stream

__all__ = ["TAKEOVER_HEADER", "Takeover", "serve_stream"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[Any]]

#: The header marking the view's own stream response (removed before it leaves).
TAKEOVER_HEADER = "X-Pgsse-Takeover"
_MARKER = TAKEOVER_HEADER.lower().encode()


#: Runs a request (a scope with an empty body) again; returns the response's status.
Redispatch = Callable[[Scope], Awaitable[int]]


class Takeover:
    """Put in the scope by the wrapper: where a ``StreamView`` leaves its stream, and what
    it needs from the server's loop (the hub, a way to re-check the request)."""

    SCOPE_KEY = "pgsse.takeover"

    __slots__ = ("_redispatch", "_scope", "hub", "rechecking", "stream")

    def __init__(
        self, scope: Scope, hub: Hub | None, redispatch: Redispatch, *, rechecking: bool = False
    ) -> None:
        self._scope = scope
        self._redispatch = redispatch
        #: The running loop's hub (None if it could not start: the view says why).
        self.hub = hub
        #: This request only re-checks an open stream's authorization (no stream opens).
        self.rechecking = rechecking
        self.stream: Stream | None = None

    @staticmethod
    def unmarked(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """``headers`` without the marker."""
        return [(name, value) for name, value in headers if name.lower() != _MARKER]

    @staticmethod
    def is_marked(message: Message) -> bool:
        """Whether ``message`` starts the view's own stream response."""
        return message["type"] == "http.response.start" and any(
            name.lower() == _MARKER for name, _ in message.get("headers", ())
        )

    async def recheck(self) -> bool:
        """Run the stream's request phase again (middleware, hooks, with the request's
        cookies and headers as they were): True if the stream may go on."""
        scope = {key: value for key, value in self._scope.items() if key != self.SCOPE_KEY}
        scope[self.SCOPE_KEY] = Takeover(scope, self.hub, self._redispatch, rechecking=True)
        try:
            return await self._redispatch(scope) == 204
        finally:
            del scope[self.SCOPE_KEY]


async def serve_stream(stream: Stream, receive: Receive, send: Send) -> None:
    """Send the stream's bytes (its response has started), until it ends."""
    chunks = stream.chunks()
    # Some servers (uvicorn) silently drop writes to a client that went away: only the
    # disconnect message tells. One waiting task per stream, like Django's own handler.
    watching = asyncio.ensure_future(_disconnected(receive))

    def left(done: asyncio.Future[None]) -> None:
        if not done.cancelled():
            stream.client_left()

    watching.add_done_callback(left)
    try:
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not stream.aborted:
            raise
        # The hub cancelled a stream stuck writing to a client that stopped reading: end
        # without completing the response, and the server drops the connection.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
    finally:
        watching.cancel()
        await chunks.aclose()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
