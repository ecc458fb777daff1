"""Test streams as you test views: :class:`StreamClient`, in ``pgsse.testing``.

.. code-block:: python

    from django.test import TransactionTestCase
    from pgsse import publish
    from pgsse.testing import StreamClient

    class OrderStreamTests(TransactionTestCase):
        async def test_the_customer_sees_a_new_order(self):
            async with StreamClient() as client:
                await client.force_login(self.customer)
                async with client.stream(f"/orders/{self.order.pk}/events/") as stream:
                    await sync_to_async(publish)(f"order:{self.order.pk}", "paid", {"total": 12})
                    event = await stream.next_event()
            assert (event.type, event.json()) == ("paid", {"total": 12})

        async def test_a_stranger_is_refused(self):
            async with StreamClient() as client:
                await client.assert_refused(f"/orders/{self.order.pk}/events/", 403)

Requests go through the project's own ASGI application (``ASGI_APPLICATION``, or
``pgsse.asgi.wrap(get_asgi_application())``), in the test's process and event loop, with
no server and no socket: every middleware, the view's hooks, the real hub on the real
database. The client owns the hub for its lifetime: it runs the application's lifespan
startup (a wrapped application opens its hub there; for one without the wrapper the client
opens the hub itself), and at the end it closes every stream, runs the lifespan shutdown
and so closes every connection the hub opened: the test database can be dropped.

A stream's request phase runs in the test's own thread, on its database connection, as
Django's test client does: under ``TestCase`` the hooks see the test's data. Events reach
a stream once committed (the hub reads the log on connections of its own, as in
production): publish in a ``TransactionTestCase`` (pytest:
``@pytest.mark.django_db(transaction=True)``) to see them arrive; under ``TestCase`` nothing
commits, so test what is published with :func:`pgsse.testing.capture_events` and what a
stream answers (status, refusals, its position) here.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections
from django.utils.module_loading import import_string

from pgsse.hub import Hub, current_hub
from pgsse.request_phase import IN_TEST_CLIENT

__all__ = ["Event", "OpenStream", "Response", "StreamClient"]

Message = dict[str, Any]
ASGIApp = Callable[..., Any]

#: Seconds a client waits, by default, for what it expects (an event, a response).
TIMEOUT = 5.0


@dataclass(frozen=True)
class Event:
    """One event as a browser's ``EventSource`` dispatches it."""

    #: ``event:`` (``"message"`` if the frame had none).
    type: str
    #: ``data:`` lines, joined with newlines.
    data: str
    #: The stream's position after this event (its ``id:``): what ``Last-Event-ID`` sends.
    id: str

    def json(self) -> Any:
        """``data`` decoded (what ``publish()`` sent)."""
        return json.loads(self.data)


@dataclass
class Response:
    """An answer read whole: a refusal, or any page."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


class StreamClient:
    """Opens streams (and makes any request) through the project's ASGI application.

    ``application``: the ASGI application (default: ``settings.ASGI_APPLICATION``).
    ``headers``: sent with every request. Use it as ``async with StreamClient() as client``.
    """

    def __init__(
        self,
        application: ASGIApp | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._application = application
        self._headers = dict(headers or {})
        self._cookies: SimpleCookie = SimpleCookie()
        self._owned = contextlib.AsyncExitStack()
        self._streams: list[OpenStream] = []
        self._app: ASGIApp | None = None

    @property
    def app(self) -> ASGIApp:
        if self._app is None:
            raise RuntimeError("use the client as `async with StreamClient() as client:`")
        return self._app

    # -- lifetime ----------------------------------------------------------------------

    async def __aenter__(self) -> StreamClient:
        self._app = self._application or _project_application()
        # The test's connection must outlive each request, inside a TestCase transaction:
        # Django's own test client keeps this receiver off for the same reason.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        self._owned.callback(request_started.connect, close_old_connections)
        self._owned.callback(request_finished.connect, close_old_connections)
        try:
            await self._open_hub()
        except BaseException:
            await self._owned.aclose()
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            for stream in list(self._streams):
                await stream.close()
        finally:
            await self._owned.aclose()
            # Connections that requests opened in another thread than the test's (an async
            # pytest test runs sync code in asgiref's thread): closed, unless a test
            # transaction holds them.
            await sync_to_async(_close_idle_connections)()

    async def _open_hub(self) -> None:
        existing = current_hub()
        if existing is not None and not existing.closed:
            return  # another owner (a server, a client around this one) has it open
        lifespan = _Lifespan(self.app)
        if await lifespan.startup():
            self._owned.push_async_callback(lifespan.shutdown)
        else:  # the application has no lifespan (it is not wrapped): the client owns it
            await self._owned.enter_async_context(Hub.from_django())

    # -- authentication ----------------------------------------------------------------

    async def force_login(self, user: Any, backend: str | None = None) -> None:
        """Log ``user`` in for the requests that follow (a session, its cookie), as
        ``Client.force_login()`` does."""
        from django.test import AsyncClient

        helper = AsyncClient()
        await helper.aforce_login(user, backend)
        self._cookies.update(helper.cookies)

    async def logout(self) -> None:
        """Forget the session (requests that follow are anonymous)."""
        self._cookies = SimpleCookie()

    # -- requests ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def stream(
        self,
        path: str,
        *,
        last_event_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = TIMEOUT,
    ) -> AsyncIterator[OpenStream]:
        """Open a stream at ``path`` (with a query string, if any); it is closed (the
        client disconnects) when the block ends. Fails unless it answers 200."""
        stream = await self.open(path, last_event_id=last_event_id, headers=headers)
        try:
            await stream.started(timeout)
            if stream.status != 200:
                body = await stream.rest(timeout)
                raise AssertionError(
                    f"GET {path} answered {stream.status}, not a stream: {body.decode()!r}"
                )
            yield stream
        finally:
            await stream.close()

    async def open(
        self,
        path: str,
        *,
        last_event_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
        body: bytes = b"",
    ) -> OpenStream:
        """Send a request and return at once; the caller closes what it opened."""
        wanted = {**self._headers, **(headers or {})}
        if last_event_id is not None:
            wanted["Last-Event-ID"] = last_event_id
        stream = OpenStream(self, _scope(method, path, wanted, self._cookies), body)
        self._streams.append(stream)
        return stream

    async def get(
        self,
        path: str,
        *,
        query: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = TIMEOUT,
    ) -> Response:
        """``GET path`` answered whole (not for streams that are accepted: they never end)."""
        if query:
            path = f"{path}?{urlencode(query)}"
        stream = await self.open(path, headers=headers)
        try:
            await stream.started(timeout)
            return Response(stream.status, stream.headers, await stream.rest(timeout))
        finally:
            await stream.close()

    async def assert_refused(
        self,
        path: str,
        status: int,
        contains: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = TIMEOUT,
    ) -> Response:
        """Assert that the stream at ``path`` is refused with ``status`` (and a body that
        says ``contains``); return the refusal."""
        stream = await self.open(path, headers=headers)
        try:
            await stream.started(timeout)
            if stream.status == 200:
                raise AssertionError(f"GET {path} opened a stream; expected a {status}")
            response = Response(stream.status, stream.headers, await stream.rest(timeout))
        finally:
            await stream.close()
        if response.status != status:
            raise AssertionError(
                f"GET {path} answered {response.status}, not {status}: {response.text!r}"
            )
        if contains is not None and contains not in response.text:
            raise AssertionError(f"GET {path}: {contains!r} not in {response.text!r}")
        return response

    def _forget(self, stream: OpenStream) -> None:
        with contextlib.suppress(ValueError):
            self._streams.remove(stream)


@dataclass
class _Frames:
    """The WHATWG event-stream parser, enough of it for tests: events, ids, retry."""

    buffer: str = ""
    event_type: str = ""
    data: list[str] = field(default_factory=list)
    last_event_id: str = ""
    retry: int | None = None
    comments: int = 0

    def feed(self, chunk: bytes) -> list[Event]:
        self.buffer += chunk.decode()
        events = []
        lines = self.buffer.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self.buffer = lines.pop()
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> Event | None:
        if not line:
            event = None
            if self.data:
                event = Event(
                    self.event_type or "message", "\n".join(self.data), self.last_event_id
                )
            self.event_type, self.data = "", []
            return event
        if line.startswith(":"):
            self.comments += 1
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.event_type = value
        elif name == "data":
            self.data.append(value)
        elif name == "id" and "\x00" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value)
        return None


class OpenStream:
    """One request in flight: its status and headers, then its events."""

    def __init__(self, client: StreamClient, scope: Message, body: bytes) -> None:
        self._client = client
        self.path = scope["path"]
        #: Filled when the response starts.
        self.status = 0
        self.headers: dict[str, str] = {}
        #: Every event received so far, in order.
        self.received: list[Event] = []
        self._frames = _Frames()
        self._body = bytearray()
        self._read = 0  # events handed out by next_event()
        self._changed = asyncio.Event()
        self._started = asyncio.Event()
        self._ended = False
        self._disconnect = asyncio.Event()
        self._sent_request = False
        self._request_body = body
        context = contextvars.copy_context()
        context.run(IN_TEST_CLIENT.set, True)
        self._task = asyncio.get_running_loop().create_task(
            client.app(scope, self._receive, self._send), context=context
        )
        self._task.add_done_callback(lambda _: self._wake())

    # -- what the test reads -----------------------------------------------------------

    @property
    def last_event_id(self) -> str:
        """The stream's position: the last ``id:`` received (what a reconnect sends)."""
        return self._frames.last_event_id

    @property
    def retry(self) -> int | None:
        """The last ``retry:`` received, in milliseconds."""
        return self._frames.retry

    @property
    def ended(self) -> bool:
        """The server ended the response (it sent ``retry:`` first if it ended a stream)."""
        return self._ended

    async def started(self, timeout: float = TIMEOUT) -> None:
        await self._until(lambda: self._started.is_set(), timeout, "the response to start")

    async def next_event(self, timeout: float = TIMEOUT) -> Event:
        """The next event (comments and id-only frames are not events); ``TimeoutError`` if
        none comes within ``timeout`` seconds, or the stream ends first."""
        await self._until(
            lambda: len(self.received) > self._read or self._ended, timeout, "an event"
        )
        if len(self.received) <= self._read:
            raise TimeoutError(f"{self.path}: the stream ended; events: {self.received!r}")
        self._read += 1
        return self.received[self._read - 1]

    async def events(self, count: int, timeout: float = TIMEOUT) -> list[Event]:
        """The next ``count`` events."""
        return [await self.next_event(timeout) for _ in range(count)]

    async def until_live(self, timeout: float = TIMEOUT) -> str:
        """Wait until the stream has sent its position (it is subscribed: anything
        committed from now on reaches it); return the position."""
        await self._until(lambda: bool(self.last_event_id), timeout, "the stream's position")
        return self.last_event_id

    async def until_ended(self, timeout: float = TIMEOUT) -> None:
        """Wait until the server ends the stream (closed on purpose, shutting down...)."""
        await self._until(lambda: self._ended, timeout, "the server to end the stream")

    async def rest(self, timeout: float = TIMEOUT) -> bytes:
        """The whole body of a response that ends (a refusal, a page)."""
        await self._until(lambda: self._ended, timeout, "the end of the response")
        return bytes(self._body)

    async def close(self) -> None:
        """Disconnect, as a browser closing the page does, and wait for the app to end."""
        self._disconnect.set()
        try:
            async with asyncio.timeout(TIMEOUT * 2):
                await asyncio.gather(self._task, return_exceptions=True)
        except TimeoutError:
            self._task.cancel()
            raise AssertionError(f"{self.path}: the application did not end") from None
        finally:
            self._client._forget(self)
        if not self._task.cancelled() and self._task.exception() is not None:
            raise self._task.exception()  # type: ignore[misc]

    async def _until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    if self._task.done() and not condition():
                        if self._task.exception() is not None:
                            raise self._task.exception()  # type: ignore[misc]
                        break
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"{self.path}: waited {timeout} s for {what}; status {self.status},"
                f" events {self.received!r}"
            ) from None
        if not condition():
            raise TimeoutError(f"{self.path}: the application ended before {what}")

    # -- ASGI --------------------------------------------------------------------------

    async def _receive(self) -> Message:
        if not self._sent_request:
            self._sent_request = True
            return {"type": "http.request", "body": self._request_body, "more_body": False}
        await self._disconnect.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {
                name.decode("latin1").lower(): value.decode("latin1")
                for name, value in message.get("headers", ())
            }
            self._started.set()
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            self._body += chunk
            if self.status == 200 and self.headers.get("content-type", "").startswith(
                "text/event-stream"
            ):
                self.received += self._frames.feed(chunk)
            if not message.get("more_body", False):
                self._ended = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()


class _Lifespan:
    """The application's lifespan protocol, driven as a server does."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[Any] | None = None

    async def startup(self) -> bool:
        """True once the application has started; False if it has no lifespan."""
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        self._task = asyncio.get_running_loop().create_task(
            self._app(scope, self._to_app.get, self._from_app.put)
        )
        await self._to_app.put({"type": "lifespan.startup"})
        answer = asyncio.ensure_future(self._from_app.get())
        await asyncio.wait({answer, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not answer.done():
            answer.cancel()
            self._task.exception()  # Django's handler alone raises on a lifespan scope
            return False
        message = answer.result()
        if message["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"the application failed to start: {message.get('message')}")
        return True

    async def shutdown(self) -> None:
        assert self._task is not None
        await self._to_app.put({"type": "lifespan.shutdown"})
        await self._from_app.get()
        await self._task


def _project_application() -> ASGIApp:
    path = getattr(settings, "ASGI_APPLICATION", None)
    if path:
        return import_string(path)  # type: ignore[no-any-return]
    from django.core.asgi import get_asgi_application

    import pgsse.asgi

    return pgsse.asgi.wrap(get_asgi_application())


def _scope(method: str, path: str, headers: Mapping[str, str], cookies: SimpleCookie) -> Message:
    path, _, query = path.partition("?")
    sent = [(b"host", b"testserver")]
    sent += [
        (name.lower().encode("latin1"), value.encode("latin1")) for name, value in headers.items()
    ]
    if cookies:
        jar = "; ".join(f"{name}={morsel.coded_value}" for name, morsel in cookies.items())
        sent.append((b"cookie", jar.encode("latin1")))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": sent,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def _close_idle_connections() -> None:
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()
