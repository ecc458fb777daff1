"""A stream's request phase under ``pgsse.asgi.wrap()``: Django's own handling, in a pool.

Under ``wrap()``, a request whose path resolves to a ``StreamView`` does not go through
Django's ASGI handler. It runs through Django's *synchronous* request handling instead
(the same ``BaseHandler`` machinery the WSGI handler uses): ``request_started``, every
middleware in ``MIDDLEWARE`` (process_request, process_view, the view, process_response,
process_exception), then ``request_finished``, all in one call to a small pool of threads
(``SETUP_CONCURRENCY`` of them, created once). The view's hooks run there too, sync hooks
directly, async ones on the server's loop.

Why not Django's ASGI handler: it gives each request a fresh thread that lives as long as
the response, and it hops between the loop and that thread twice per middleware (each
``MiddlewareMixin`` hook runs through ``sync_to_async``). For a stream, that meant an OS
thread per open stream and a few hundred streams opened per second. Here the thread is
shared and given back before the first event, and the whole phase is one hop.

The phase ends with every database connection it opened closed (an open stream never holds
one; with Django's connection pool, closing gives it back to the pool).
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeVar

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.db import connections
from django.http import HttpResponse, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.urls import set_script_prefix

from pgsse.takeover import TAKEOVER_HEADER, Takeover

if TYPE_CHECKING:
    from pgsse.takeover import Message, Scope, Send

__all__ = [
    "IN_TEST_CLIENT",
    "RequestPhase",
    "close_connections",
    "send_response",
    "start_message",
]

logger = logging.getLogger("pgsse.request_phase")

T = TypeVar("T")

#: Set by :class:`pgsse.testing.StreamClient` for the requests it makes: their request
#: phase runs in the test's thread (on its connection, inside a ``TestCase``'s
#: transaction) and closes no connection, as Django's own test client does.
IN_TEST_CLIENT: ContextVar[bool] = ContextVar("pgsse_in_test_client", default=False)


class RequestPhase:
    """Runs stream requests through Django's synchronous handler, in ``workers`` threads."""

    def __init__(self, workers: int) -> None:
        self._handler = BaseHandler()
        self._handler.load_middleware(is_async=False)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="pgsse-request")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def respond(self, scope: Scope, body: bytes) -> HttpResponseBase | Message | None:
        """Django's answer to the request: the start message of the view's stream (its
        status, headers and cookies as the middleware left them), or any other response,
        which the caller sends and then closes (:meth:`close_response`); None if the
        client left (see :meth:`Takeover.watch`) before the request's turn came."""
        # In a task of its own: whatever context variables the phase sets stay there, not
        # in the context of the task that then serves the stream for hours.
        return await asyncio.get_running_loop().create_task(self._respond(scope, body))

    async def _respond(self, scope: Scope, body: bytes) -> HttpResponseBase | Message | None:
        return await self._in_thread(self._run)(scope, body)

    async def close_response(self, response: HttpResponseBase) -> None:
        """Close a response the caller has sent (``request_finished`` runs in the pool)."""
        await self._in_thread(self._closed)(response)

    def _in_thread(self, function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
        if IN_TEST_CLIENT.get():
            # The test's own thread: its connection, inside its transaction (TestCase).
            return sync_to_async(function, thread_sensitive=True)
        return sync_to_async(function, thread_sensitive=False, executor=self._pool)

    def _run(self, scope: Scope, body: bytes) -> HttpResponseBase | Message | None:
        takeover = scope.get(Takeover.SCOPE_KEY)
        if takeover is not None and takeover.client_left:
            return None  # gone while it waited for a thread: nobody to answer
        try:
            set_script_prefix(get_script_prefix(scope))
            signals.request_started.send(sender=ASGIHandler, scope=scope)
            try:
                request = ASGIRequest(scope, io.BytesIO(body))
            except UnicodeDecodeError:
                logger.warning("Bad Request (UnicodeDecodeError)", exc_info=True)
                return self._closed(HttpResponseBadRequest())
            except RequestDataTooBig:
                return self._closed(HttpResponse("413 Payload too large", status=413))
            response = self._handler.get_response(request)
            if not getattr(response, "pgsse_stream", False):
                return response
            start = start_message(response, without=TAKEOVER_HEADER)
            self._closed(response)
            # The request and its response hold each other in cycles (the lazy user, the
            # messages storage): break them, so that they are freed now rather than by the
            # cyclic collector, whose full passes are what grow with thousands of streams.
            request.__dict__.clear()
            response.__dict__.clear()
            return start
        finally:
            # Django keeps connections per thread, and this thread serves other requests
            # next: close them now, also for a response closed (request_finished) once sent.
            close_connections()

    def _closed(self, response: HttpResponseBase) -> HttpResponseBase:
        try:
            response.close()  # request_finished: Django closes the request's connections
        finally:
            # Whatever CONN_MAX_AGE says: these threads serve many streams' requests.
            close_connections()
        return response


def close_connections() -> None:
    """Close this thread's database connections: a stream never holds one. Not under the
    test client, whose requests run on the test's own connection (see pgsse.testing)."""
    if not IN_TEST_CLIENT.get():
        connections.close_all()


def start_message(response: HttpResponseBase, without: str = "") -> Message:
    """The ``http.response.start`` message of a Django response: status, headers (but
    ``without``), cookies, as Django's ASGI handler builds it."""
    headers = [
        (name.encode("ascii"), value.encode("latin1"))
        for name, value in response.items()
        if name.lower() != without.lower()
    ]
    headers += [
        (b"Set-Cookie", cookie.output(header="").encode("ascii").strip())
        for cookie in response.cookies.values()
    ]
    return {"type": "http.response.start", "status": response.status_code, "headers": headers}


async def send_response(response: HttpResponseBase, send: Send) -> None:
    """Send a Django response over ASGI: its start, then its body."""
    await send(start_message(response))
    if response.streaming:
        async for part in aiter(response):  # type: ignore[arg-type]
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    else:
        body: bytes = response.content  # type: ignore[attr-defined]
        await send({"type": "http.response.body", "body": body, "more_body": False})
