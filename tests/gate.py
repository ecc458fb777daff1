"""A stream route that refuses when told to, counts the requests it saw, and can end its
open streams: what a client meets when a server is full, denies it, or goes away.

``gated(view)`` puts a stream view behind the gate named by the URL's ``gate``
argument: requests pass to the view unless that gate is refusing; then it answers with
the gate's status (and ``Retry-After``) itself. Tests create a gate with the ``gate``
fixture of tests/e2e/test_pgsse_js_browser.py and drive it from the test thread while
the server runs in another.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from pgsse import sse
from pgsse.views import StreamView

#: What an ended stream tells the browser: come back after 100 ms.
RETRY_SOON = sse.encode_retry(100)


@dataclass(frozen=True)
class Seen:
    """One request the gate saw, and its answer."""

    status: int
    last_event_id_header: str | None
    last_event_id_query: str | None


class Gate:
    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._refusal: tuple[int, int | None] | None = None
        self._end_streams = False
        self._seen: list[Seen] = []
        #: While held, requests wait before the view runs (``entered`` is set when one
        #: waits); ``left`` is set when a view has answered.
        self._go = threading.Event()
        self._go.set()
        self.entered = threading.Event()
        self.left = threading.Event()

    def url(self, channel: str) -> str:
        return f"/gated/{self.name}/{channel}/"

    def refuse(self, status: int, retry_after: int | None = None) -> None:
        """Answer every request with ``status`` (and ``Retry-After``) until :meth:`admit`."""
        with self._lock:
            self._refusal = (status, retry_after)

    def admit(self) -> None:
        with self._lock:
            self._refusal = None

    def hold(self) -> None:
        """Make requests wait in their request phase (before the view) until :meth:`release`."""
        self._go.clear()

    def release(self) -> None:
        self._go.set()

    def wait_to_go(self) -> None:
        self.entered.set()
        if not self._go.wait(30):
            raise TimeoutError(f"gate {self.name} was never released")

    def end_streams_after_next_event(self) -> None:
        """End each open stream after the next chunk that carries an event (not after a
        comment or an id-only frame), with ``retry: 100``."""
        with self._lock:
            self._end_streams = True

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def refusal(self) -> tuple[int, int | None] | None:
        """The status and Retry-After the gate answers with now, or None: admitted."""
        with self._lock:
            return self._refusal

    def record(self, request: HttpRequest, status: int) -> None:
        seen = Seen(status, request.headers.get("Last-Event-ID"), request.GET.get("last_event_id"))
        with self._lock:
            self._seen.append(seen)

    def take_end(self) -> bool:
        with self._lock:
            ending, self._end_streams = self._end_streams, False
            return ending

    async def until_ended(
        self, content: AsyncGenerator[bytes, None]
    ) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in content:
                yield chunk
                if b"\ndata:" in chunk and self.take_end():
                    yield RETRY_SOON
                    return
        finally:
            # Closing Django's wrapper leaves pgsse's generator to the garbage collector,
            # whose finalizer closes it on the server's loop (its `finally` runs then).
            await content.aclose()


GATES: dict[str, Gate] = {}


def gated(stream: Callable[..., HttpResponseBase]) -> Callable[..., Any]:
    """``stream`` (a stream view) behind the gate named by the URL's ``gate``."""

    def gated_stream(request: HttpRequest, gate: str, **kwargs: Any) -> HttpResponseBase:
        the_gate = GATES[gate]
        refusal = the_gate.refusal()
        if refusal is not None:
            status, retry_after = refusal
            the_gate.record(request, status)
            refused = HttpResponse(f"Refused by gate {gate}.\n", status=status)
            refused["Content-Type"] = "text/plain; charset=utf-8"
            if retry_after is not None:
                refused["Retry-After"] = str(retry_after)
            return refused
        the_gate.wait_to_go()
        response = stream(request, **kwargs)
        the_gate.record(request, response.status_code)
        the_gate.left.set()
        if isinstance(response, StreamingHttpResponse):
            content = response.streaming_content
            assert isinstance(content, AsyncGenerator)  # the stream's chunks
            response.streaming_content = the_gate.until_ended(content)
        return response

    return gated_stream


class HeldStreamView(StreamView):
    """A stream view (recognised as one by the wrapper) whose requests wait at the gate
    named by the URL's ``gate`` while it is held, before anything else; the gate records
    each answer, and its ``left`` is set once the view has answered (its stream admitted
    and handed over)."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
        the_gate = GATES[kwargs.pop("gate")]
        the_gate.wait_to_go()
        try:
            response = super().get(request, **kwargs)
            the_gate.record(request, response.status_code)
            return response
        finally:
            the_gate.left.set()
