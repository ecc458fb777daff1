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
  application answers it, and owns the worker's hub: it opens it at startup and, at
  shutdown, closes it (every stream ended, every connection closed). Streams are ended
  earlier than lifespan shutdown, when SIGTERM arrives (see :mod:`pgsse.shutdown`). Under
  a server that sends no lifespan events (daphne), the first stream request opens a hub
  owned by the event loop instead (see :func:`pgsse.hub.get_hub`).
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

import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http.response import HttpResponseBase

from pgsse import static_files
from pgsse.conf import get_settings
from pgsse.hub import Hub, current_hub, get_hub
from pgsse.request_phase import RequestPhase, send_response
from pgsse.routes import StreamRoutes
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
        self._hub: Hub | None = None

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One serving path: whichever way a stream request is answered, its stream is
        served here, and given back (its admission place with it) if it is not."""
        if scope["method"] in ("GET", "HEAD") and self._routes.is_stream(scope):
            takeover = Takeover(scope, _hub_or_none(), self._redispatch)
            answer = self._answer_in_pool
        else:
            # The hub is not started for every request: a stream reached this way starts it.
            takeover = Takeover(scope, current_hub(), self._redispatch_to_django)
            answer = self._answer_in_django
        try:
            if await answer(scope, receive, send, takeover):
                stream = takeover.take()
                if stream is not None:
                    # Only the stream is left of the request: what follows may last hours.
                    await serve_stream(stream, scope, receive, send, takeover.take_watch())
        finally:
            takeover.abandon()

    async def _answer_in_pool(
        self, scope: Scope, receive: Receive, send: Send, takeover: Takeover
    ) -> bool:
        """A path that resolves to a StreamView: the request phase in the pool (a). Sends
        its answer; True if that was the start of the view's stream."""
        hub = takeover.hub
        refusal = hub.opens.refuse_address(_address(scope)) if hub is not None else None
        if refusal is not None:
            # Before any work on the request: a flood from one address never reaches the
            # pool that other clients' streams open through.
            headers = {"Retry-After": str(refusal.retry_after)}
            await _send_plain(send, refusal.status, refusal.message, headers)
            return False
        takeover.address_counted = hub is not None
        body = await _read_body(receive, get_settings().MAX_REQUEST_BODY_BYTES)
        if body is None:
            return False  # the client left before the request was complete
        if isinstance(body, _TooLarge):
            await _send_plain(send, 413, str(body), {})
            return False
        phase = self._request_phase(hub)
        # In a reconnect storm requests queue for the pool's threads, and their clients may
        # give up meanwhile: such a request phase is skipped, not run for nobody (running
        # them would keep the pool busy while the clients still waiting give up in turn).
        takeover.watch(receive)
        # Left in the scope if this is cancelled: the request phase, still running in its
        # thread, finds it and hands its stream over (to be discarded).
        scope[Takeover.SCOPE_KEY] = takeover
        answer = await phase.respond(scope, body)
        del scope[Takeover.SCOPE_KEY]  # no reference cycle left for the collector
        if answer is None:
            return False  # the client left before its request phase ran
        if not isinstance(answer, HttpResponseBase):  # the start of the view's stream
            await send(answer)
            return True
        try:
            await send_response(answer, send)  # a refusal, or a middleware's own answer
        finally:
            await phase.close_response(answer)
        return False

    async def _answer_in_django(
        self, scope: Scope, receive: Receive, send: Send, takeover: Takeover
    ) -> bool:
        """Any other request: Django's handler. Should a StreamView answer it anyway (a
        middleware set ``request.urlconf``), its stream is taken over as Django's handler
        sends the response (b); True then, once the stream's response has started."""
        scope[Takeover.SCOPE_KEY] = takeover
        withheld: list[Message] = []

        async def watch(message: Message) -> None:
            if withheld or (takeover.has_stream and Takeover.is_marked(message)):
                withheld.append(message)  # the view's stream response: served by http()
            else:
                await send(message)

        try:
            await self._app(scope, receive, watch)
        finally:
            del scope[Takeover.SCOPE_KEY]
        if not withheld:
            return False  # no stream, or a middleware answered instead of the view
        start = withheld[0]
        await send({**start, "headers": Takeover.unmarked(start["headers"])})
        return True

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
        if answer is None:
            return 0  # the client left
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
        """The worker's hub, opened at startup and closed at shutdown: its owner is this.
        It is kept once closed, so that a request arriving after it is refused (503)
        rather than opening another."""
        async with contextlib.AsyncExitStack() as owned:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        self._hub = await owned.enter_async_context(Hub.from_django())
                    except Exception as exc:
                        logger.exception("pgsse could not start")
                        await send({"type": "lifespan.startup.failed", "message": str(exc)})
                        return
                    if get_settings().GC_FREEZE:
                        gc.freeze()  # what loading the project made lives as long as the process
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await owned.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return


def _hub_or_none() -> Hub | None:
    try:
        return get_hub()
    except ImproperlyConfigured:
        return None  # the view answers with what is missing


class _TooLarge(str):
    """Why a request body was refused."""


async def _read_body(receive: Receive, limit: int) -> bytes | _TooLarge | None:
    """The request body, at most ``limit`` bytes; None if the client left first."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            # Refused unread: a stream request has no use for a body, and this runs
            # before the request is authenticated.
            return _TooLarge(f"A stream request carries no body; this one is over {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


async def _send_plain(send: Send, status: int, message: str, headers: dict[str, str]) -> None:
    body = (message + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *((name.lower().encode(), value.encode()) for name, value in headers.items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
