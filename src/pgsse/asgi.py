"""``wrap()``: pgsse's ASGI wrapper, the way to deploy it.

::

    from django.core.asgi import get_asgi_application
    import pgsse.asgi

    application = pgsse.asgi.wrap(get_asgi_application())

What it does:

- **Streams hold no thread.** Django's handler runs each stream request as usual (every
  middleware, the view's hooks), then the wrapper takes the stream over and serves it
  with bare ASGI messages, once Django's handler (and its per-request thread) has
  finished. See :mod:`pgsse.takeover`. Other requests pass through untouched.
- **Lifespan.** Django's ASGI handler refuses the lifespan protocol; wrapped, the
  application answers it: the hub starts with the worker (instead of on the first stream)
  and, at shutdown, ends every stream and closes its connections. Streams are ended
  earlier than lifespan shutdown, when SIGTERM arrives (see :mod:`pgsse.shutdown`).
- **Start-up housekeeping.** After start-up, the objects the application created while
  loading (modules, URLconf, settings) are frozen out of the garbage collector's sight
  (``gc.freeze()``): full collections then walk only what requests create, which keeps
  their pauses short with thousands of open streams.
- **Static files in development.** With ``DEBUG`` on, ``STATIC_URL`` is served as
  ``runserver`` serves it (:mod:`pgsse.static_files`), so that ``uvicorn --reload`` works
  like the development server; never with ``DEBUG`` off.

Without the wrapper, ``StreamView`` still works: each stream then holds a thread.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http.response import HttpResponseBase

from pgsse import static_files
from pgsse.conf import get_settings
from pgsse.hub import Hub, close_hub, current_hub, get_hub
from pgsse.request_phase import RequestPhase, send_response
from pgsse.routes import StreamRoutes
from pgsse.stream import Stream
from pgsse.takeover import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    Takeover,
    serve_stream,
)

__all__ = ["is_wrapped", "wrap"]

logger = logging.getLogger("pgsse.asgi")


def wrap(app: Callable[..., Awaitable[Any]]) -> ASGIApp:
    """``app`` (Django's ASGI application) with pgsse's stream takeover and lifespan."""
    wrapper = _Wrapper(app)

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await wrapper.http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await wrapper.lifespan(receive, send)
        else:
            await app(scope, receive, send)

    application.pgsse_wrapped = True  # type: ignore[attr-defined]  # see is_wrapped()
    application.__wrapped__ = app  # type: ignore[attr-defined]
    return static_files.in_development(application)


#: Where ASGI middleware keeps the application it wraps: ``functools.wraps``, Starlette
#: and Sentry (``app``), Django's ``ASGIStaticFilesHandler`` and servestatic (``application``).
_INNER = ("__wrapped__", "app", "application")


def is_wrapped(application: object) -> bool:
    """Whether ``application`` is (or wraps, through ASGI middleware) an application made
    by :func:`wrap`."""
    seen = 0
    while application is not None and seen < 10:
        if getattr(application, "pgsse_wrapped", False):
            return True
        inner = (getattr(application, name, None) for name in _INNER)
        application = next((found for found in inner if found is not None), None)
        seen += 1
    return False


class _Wrapper:
    """The state behind one wrapped application: its request phase and known routes."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._phase: RequestPhase | None = None
        self._routes = StreamRoutes()

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in ("GET", "HEAD") and self._routes.is_stream(scope):
            await self._stream_request(scope, receive, send)
        else:
            await self._django_request(scope, receive, send)

    async def _stream_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A path that resolves to a StreamView: the request phase in the pool (a)."""
        stream = await self._answer_in_pool(scope, receive, send)
        if stream is not None:
            # Only the stream is left of the request: what follows may last for hours.
            await serve_stream(stream, receive, send)

    async def _answer_in_pool(self, scope: Scope, receive: Receive, send: Send) -> Stream | None:
        """Run the request phase; send its answer, or the start of the stream to serve."""
        body = await _read_body(receive)
        if body is None:
            return None  # the client left before the request was complete
        hub = _hub_or_none()
        phase = self._request_phase(hub)
        takeover = Takeover(scope, hub, self._redispatch)
        scope[Takeover.SCOPE_KEY] = takeover
        try:
            answer = await phase.respond(scope, body)
        finally:
            del scope[Takeover.SCOPE_KEY]  # no reference cycle left for the collector
        stream, takeover.stream = takeover.stream, None
        if not isinstance(answer, HttpResponseBase):  # the start of the view's stream
            await send(answer)
            return stream
        if stream is not None:  # a middleware answered instead of the view
            stream.discard()
        try:
            await send_response(answer, send)
        finally:
            await phase.close_response(answer)
        return None

    async def _django_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Any other request: Django's handler. Should a StreamView answer it anyway (a
        middleware set ``request.urlconf``), its stream is taken over as Django's handler
        sends the response (b)."""
        stream = await self._answer_in_django(scope, receive, send)
        if stream is not None:
            # Django's handler has returned: its context and thread are gone.
            await serve_stream(stream, receive, send)

    async def _answer_in_django(self, scope: Scope, receive: Receive, send: Send) -> Stream | None:
        # The hub is not started for every request: a stream reached this way starts it.
        takeover = Takeover(scope, current_hub(), self._redispatch_to_django)
        scope[Takeover.SCOPE_KEY] = takeover
        withheld: list[Message] = []

        async def watch(message: Message) -> None:
            if withheld or Takeover.is_marked(message):
                withheld.append(message)  # the view's stream response: served below
            else:
                await send(message)

        try:
            await self._app(scope, receive, watch)
        except BaseException:
            if takeover.stream is not None:
                takeover.stream.discard()
            raise
        finally:
            del scope[Takeover.SCOPE_KEY]
        stream, takeover.stream = takeover.stream, None
        if stream is None:
            return None
        if not withheld:  # a middleware answered instead of the view
            stream.discard()
            return None
        start = withheld[0]
        await send({**start, "headers": Takeover.unmarked(start["headers"])})
        return stream

    def _request_phase(self, hub: Hub | None) -> RequestPhase:
        if self._phase is None:
            self._phase = phase = RequestPhase(get_settings().SETUP_CONCURRENCY)
            if hub is not None:  # its threads go when the hub goes (whoever closes it)
                hub.add_closer(lambda: self._close_phase(phase))
        return self._phase

    def _close_phase(self, phase: RequestPhase) -> None:
        phase.close()
        if self._phase is phase:
            self._phase = None

    async def _redispatch(self, scope: Scope) -> int:
        phase = self._request_phase(_hub_or_none())
        answer = await phase.respond(scope, b"")
        if not isinstance(answer, HttpResponseBase):
            return int(answer["status"])
        await phase.close_response(answer)
        return answer.status_code

    async def _redispatch_to_django(self, scope: Scope) -> int:
        status = 0

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self._app(scope, receive, send)
        return status

    async def lifespan(self, receive: Receive, send: Send) -> None:
        await _lifespan(receive, send)


def _hub_or_none() -> Hub | None:
    try:
        return get_hub()
    except ImproperlyConfigured:
        return None  # the view answers with what is missing


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                get_hub()
            except Exception as exc:
                logger.exception("pgsse could not start")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            if get_settings().GC_FREEZE:
                gc.freeze()  # what loading the project created lives as long as the process
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await close_hub()
            await send({"type": "lifespan.shutdown.complete"})
            return
