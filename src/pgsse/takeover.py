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
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from pgsse.transport import drop_connection, flow_controlled

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
    it needs from the server's loop (the hub, a way to re-check the request).

    The stream (and the admission place it holds) is owned by exactly one party at a time:
    the view until it hands it over, then this object until the wrapper takes it to serve
    it. Whatever is not taken is discarded when the wrapper abandons the request, even a
    stream handed over later by a request phase still running in its thread after the
    request's task was cancelled (a client that left: daphne cancels such tasks).
    """

    SCOPE_KEY = "pgsse.takeover"

    __slots__ = (
        "_abandoned",
        "_lock",
        "_redispatch",
        "_scope",
        "_stream",
        "_watching",
        "address_counted",
        "client_left",
        "hub",
        "rechecking",
    )

    def __init__(
        self, scope: Scope, hub: Hub | None, redispatch: Redispatch, *, rechecking: bool = False
    ) -> None:
        self._scope: Scope | None = scope
        self._redispatch = redispatch
        #: The running loop's hub (None if it could not start: the view says why).
        self.hub = hub
        #: This request only re-checks an open stream's authorization (no stream opens).
        self.rechecking = rechecking
        #: The wrapper counted this open against its address already (see pgsse.open_rate).
        self.address_counted = False
        self._stream: Stream | None = None
        self._abandoned = False
        #: The task waiting for the client to leave (see :meth:`watch`), and whether it has.
        self._watching: asyncio.Future[None] | None = None
        self.client_left = False
        # The view hands over in a thread of the request phase; the wrapper takes or
        # abandons on the loop.
        self._lock = threading.Lock()

    def watch(self, receive: Receive) -> None:
        """Notice from now on when the client leaves (its request read whole): a request
        phase still waiting for its turn is then skipped, and the stream that follows is
        ended by the same watch."""

        def left(done: asyncio.Future[None]) -> None:
            if not done.cancelled():
                self.client_left = True

        self._watching = asyncio.ensure_future(_disconnected(receive))
        self._watching.add_done_callback(left)

    def take_watch(self) -> asyncio.Future[None] | None:
        """The watch started by :meth:`watch`, now the caller's to cancel."""
        watching, self._watching = self._watching, None
        return watching

    def hand_over(self, stream: Stream) -> None:
        """The view's stream, to be served by the wrapper (called once, in any thread)."""
        with self._lock:
            abandoned = self._abandoned
            if not abandoned:
                self._stream = stream
        if abandoned:
            stream.discard()

    def take(self) -> Stream | None:
        """The stream handed over, now owned by the caller, who serves it."""
        with self._lock:
            stream, self._stream = self._stream, None
        return stream

    @property
    def has_stream(self) -> bool:
        return self._stream is not None

    def abandon(self) -> None:
        """Nobody will serve a stream of this request: discard what was handed over, and
        what will be."""
        with self._lock:
            self._abandoned = True
            stream, self._stream = self._stream, None
        self._scope = None  # the scope may still hold this: no cycle left behind
        if self._watching is not None:
            self._watching.cancel()
            self._watching = None
        if stream is not None:
            stream.discard()

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
        if self._scope is None:
            return False  # the request is over
        scope = {key: value for key, value in self._scope.items() if key != self.SCOPE_KEY}
        recheck = Takeover(scope, self.hub, self._redispatch, rechecking=True)
        scope[self.SCOPE_KEY] = recheck
        try:
            return await self._redispatch(scope) == 204
        finally:
            del scope[self.SCOPE_KEY]
            recheck.abandon()


async def serve_stream(
    stream: Stream,
    scope: Scope,
    receive: Receive,
    send: Send,
    watching: asyncio.Future[None] | None = None,
) -> None:
    """Send the stream's bytes (its response has started), until it ends; the stream is
    the caller's, and ended here whatever happens. ``watching``: the task already waiting
    for the client to leave (:meth:`Takeover.watch`), if any."""
    server_send = send
    send, flow_done = flow_controlled(send)
    chunks = stream.chunks()
    # Some servers (uvicorn) silently drop writes to a client that went away: only the
    # disconnect message tells. One waiting task per stream, like Django's own handler.
    if watching is None:
        watching = asyncio.ensure_future(_disconnected(receive))

    def left(done: asyncio.Future[None]) -> None:
        if not done.cancelled():
            stream.client_left()

    watching.add_done_callback(left)
    try:
        async for chunk in chunks:
            if stream.left:
                break  # nothing is sent after http.disconnect
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if not stream.left:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not stream.aborted:
            raise
        # The hub cancelled a stream stuck writing to a client that stopped reading: no
        # retry: can get through, and a graceful close would wait for that client forever.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
    finally:
        watching.cancel()
        await chunks.aclose()
        flow_done()
    if stream.aborted and drop_connection(scope, server_send):
        # The server learns of the reset on its next turn: let it, so that it does not log
        # the response it sees incomplete as a fault.
        await asyncio.sleep(0)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
