"""The stream endpoint as a Django view: route it with one ``path()``.

::

    from pgsse.views import StreamView

    urlpatterns = [
        # channel from the URL, readers decided by a hook of yours
        path("events/<str:channel>/", StreamView.as_view(authorize=can_read)),
        # a fixed list, or channels computed per request
        path("news/events/", StreamView.as_view(channels=["news"], authorize=anyone)),
        path("me/events/", StreamView.as_view(channels=own_channel, authorize=only_own_channel)),
    ]

The view is the *request phase* of a stream: Django's middleware (sessions, your
authentication) has run, the ``channels`` and ``authorize`` hooks run here, the caps are
checked, and bad requests are answered before streaming, through :meth:`error_response`.
What remains is a :class:`~pgsse.stream.Stream` holding no request and no database
connection (any connection the hooks or middleware opened is closed before the first
byte). Under ``pgsse.asgi.wrap()`` the wrapper takes that stream over once Django's handler
has finished, so an open stream holds no thread; without it, the stream is the body of a
``StreamingHttpResponse`` (see :mod:`pgsse.asgi`).
"""

from __future__ import annotations

import inspect
import logging
import os
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.apps import apps
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import connections
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.defaultfilters import pluralize
from django.utils.module_loading import import_string
from django.views import View

from pgsse.admission import Refusal
from pgsse.atomic_requests import never_atomic
from pgsse.authorization import allow_authenticated
from pgsse.channels import InvalidChannel, validate_channel
from pgsse.closing import user_key
from pgsse.conf import get_settings, require_installed
from pgsse.hub import Hub, get_hub
from pgsse.position import canonical_channels
from pgsse.stream import Stream
from pgsse.takeover import TAKEOVER_HEADER, Takeover

__all__ = ["STREAM_HEADERS", "StreamView", "allow_authenticated", "stream"]

logger = logging.getLogger("pgsse.views")

ChannelsHook = Callable[[HttpRequest], Iterable[str] | Awaitable[Iterable[str]]]
AuthorizeHook = Callable[[HttpRequest, str], bool | Awaitable[bool]]

#: Headers of every stream: no caching, no buffering by nginx, and no compression:
#: Django's GZipMiddleware (which would hold events back) leaves alone a response that
#: already has a Content-Encoding.
STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "Content-Encoding": "identity",
}
CONTENT_TYPE = "text/event-stream; charset=utf-8"


def needs_asgi() -> str:
    """The refusal of a stream request that came through WSGI, naming this project's
    ASGI application (``ASGI_APPLICATION``, or the settings' package's ``asgi.py``)."""
    path = getattr(django_settings, "ASGI_APPLICATION", None) or ""
    module, _, name = path.rpartition(".")
    if not module:
        settings_module = django_settings.SETTINGS_MODULE or os.environ.get(
            "DJANGO_SETTINGS_MODULE", ""
        )
        package = settings_module.rpartition(".")[0]
        module, name = (f"{package}.asgi" if package else "asgi"), "application"
    return (
        "Server-Sent Events streams need an ASGI server, and this request came through WSGI"
        " (or `manage.py runserver` without daphne). Serve the project with"
        f" `uvicorn {module}:{name}`, or add 'daphne' at the top of INSTALLED_APPS"
        " so that runserver serves ASGI."
    )


class _Refused(Exception):
    """A hook or a check refused the stream: answered through ``error_response``."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class StreamView(View):
    """An SSE stream over one or more channels.

    - ``channels``: a fixed list of channel names, or a callable ``(request) -> iterable of
      channel names`` (sync or async); by default the ``channel`` URL keyword argument.
    - ``authorize``: a callable ``(request, channel) -> bool``, sync or async, asked for each
      channel; any False answers 403 before the stream starts. Default: the hook named by
      ``PGSSE["AUTHORIZE"]``; with neither, every stream is refused (deny by default).

    Hooks may raise ``Http404`` or ``PermissionDenied`` (answered 404 and 403 with the
    exception's message). A stream over more than ``MAX_CHANNELS_PER_STREAM`` channels, or
    one more for a user who has ``MAX_STREAMS_PER_USER`` open in this process, is answered
    429; one more in a process holding ``MAX_STREAMS``, 503. Every refusal goes through
    :meth:`error_response`: override it to answer in another format (JSON, say).
    """

    http_method_names = ["get"]
    # Not a handler (HEAD is not allowed): set here, it keeps View.setup() from binding
    # ``self.head = self.get``, a reference cycle every request would leave to the collector.
    head = None
    channels: ChannelsHook | Sequence[str] | None = None
    authorize: AuthorizeHook | None = None

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        if apps.ready:
            # Without the app, pgsse's checks never run and its tables do not exist: say
            # so where the stream is routed, which `manage.py check` and servers import.
            require_installed()
        view = super().as_view(**initkwargs)
        # A stream is never one transaction: exempt it from ATOMIC_REQUESTS, which Django
        # refuses for async views ("You cannot use ATOMIC_REQUESTS with async views").
        never_atomic(view)
        view.pgsse_stream_view = True  # type: ignore[attr-defined]  # found by the checks
        return view

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return self.error_response(
            request, 405, "An event stream only answers GET.", {"Allow": "GET"}
        )

    def error_response(
        self, request: HttpRequest, status: int, message: str, headers: dict[str, str]
    ) -> HttpResponse:
        """The answer refusing a stream request: ``message`` says why, for people.

        ``headers`` holds what the answer must carry (``Retry-After`` on 429 and 503).
        Plain text by default; override it to answer in your API's format.
        """
        response = HttpResponse(message + "\n", status=status)
        response["Content-Type"] = "text/plain; charset=utf-8"
        for name, value in headers.items():
            response[name] = value
        return response

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
        # A sync view on purpose: the request phase is sync code (sessions, the ORM in
        # hooks), and under wrap() it runs whole in one pooled thread (pgsse.request_phase).
        scope = getattr(request, "scope", None)
        if scope is None:
            refusal = needs_asgi()
            logger.error("streams need an ASGI server: %s", refusal)
            return self.error_response(request, 500, refusal, {})
        takeover: Takeover | None = scope.get(Takeover.SCOPE_KEY)
        try:
            hub = takeover.hub if takeover is not None else None
            if hub is None:
                hub = async_to_sync(_running_hub)()
        except ImproperlyConfigured as exc:
            logger.error("stream refused: %s", exc)
            return self.error_response(request, 500, str(exc), {})
        close_position = hub.close_position()
        try:
            with hub.setup_slots:
                channels, client = self._check(request, kwargs)
            if takeover is not None and takeover.rechecking:
                return HttpResponse(status=204)  # still allowed (see pgsse.takeover)
            place = hub.admission.admit(client)
            if isinstance(place, Refusal):
                raise _Refused(place.status, place.message, place.retry_after)
        except _Refused as refused:
            headers = {}
            if refused.retry_after is not None:
                headers["Retry-After"] = str(refused.retry_after)
            return self.error_response(request, refused.status, str(refused), headers)
        resume_from = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
        stream = Stream(
            hub,
            channels,
            resume_from,
            client=client,
            place=place,
            close_position=close_position,
            # The request (its scope) is kept only when re-checks are on.
            recheck=takeover.recheck if takeover and get_settings().REAUTHORIZE_INTERVAL else None,
        )
        if takeover is not None:
            takeover.stream = stream
            response = _stream_response(_connections_closed())
            response[TAKEOVER_HEADER] = "1"
            response.pgsse_stream = True  # type: ignore[attr-defined]
            return response
        body = stream.chunks(before=_close_connections)
        # A response that is never iterated (the client left at once) never runs the
        # stream's finally: give the place back when the iterator is collected.
        weakref.finalize(body, stream.discard)
        return _stream_response(body)

    def _check(self, request: HttpRequest, kwargs: dict[str, Any]) -> tuple[tuple[str, ...], str]:
        """The canonical channels to stream and who the stream counts against; raises
        :class:`_Refused`. Sync hooks run here; async ones on the server's loop."""
        settings = get_settings()
        authorize = self.authorize
        if authorize is None and settings.AUTHORIZE is not None:
            authorize = import_string(settings.AUTHORIZE)
        try:
            if callable(self.channels):
                names = _call(self.channels, request)
            else:
                names = self._fixed(kwargs)
            channels = self._valid(names)
            for name in channels:
                if authorize is None or not _call(authorize, request, name):
                    raise self._denied(name, authorize)
        except (Http404, PermissionDenied) as exc:
            raise _from_exception(exc) from exc
        return channels, _client(request)

    def _fixed(self, kwargs: dict[str, Any]) -> Iterable[str]:
        if self.channels is None:
            return [kwargs["channel"]] if "channel" in kwargs else []
        return self.channels  # type: ignore[return-value]  # a sequence, not a hook

    def _valid(self, names: object) -> tuple[str, ...]:
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, Iterable):
            raise TypeError(f"the channels hook returned {names!r}, not a list of names")
        names = list(names)
        if not names:
            raise _Refused(400, "No channel given for this stream.")
        limit = get_settings().MAX_CHANNELS_PER_STREAM
        if len(names) > limit:
            raise _Refused(
                429,
                f"A stream may follow at most {limit} channel{pluralize(limit)}; this one"
                f" asks for {len(names)}.",
                retry_after=max(1, round(get_settings().RETRY_MS / 1000)),
            )
        try:
            for name in names:
                validate_channel(name)
        except InvalidChannel as exc:
            raise _Refused(400, f"Invalid channel name: {exc}") from exc
        return canonical_channels(names)

    def _denied(self, name: str, authorize: AuthorizeHook | None) -> _Refused:
        if authorize is None:
            logger.warning(
                "stream refused: %s has no authorize hook and PGSSE['AUTHORIZE'] is not set"
                " (pgsse denies by default; see pgsse.authorization)",
                type(self).__name__,
            )
            return _Refused(403, "This stream refuses every reader: it has no authorization.")
        return _Refused(403, f"You may not read channel {name!r}.")


async def _running_hub() -> Hub:
    return get_hub()


def _call(hook: Callable[..., Any], *args: Any) -> Any:
    """Run a hook that may be sync (here, ORM allowed) or async (on the server's loop)."""
    if inspect.iscoroutinefunction(hook):
        return async_to_sync(hook)(*args)
    result = hook(*args)
    if inspect.isawaitable(result):
        result = async_to_sync(_awaited)(result)
    return result


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _from_exception(exc: Http404 | PermissionDenied) -> _Refused:
    if isinstance(exc, Http404):
        return _Refused(404, str(exc) or "Not found.")
    return _Refused(403, str(exc) or "You may not read this stream.")


def _client(request: HttpRequest) -> str:
    """Who a stream counts against: the logged-in user; anonymous streams are not counted."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user_key(user)
    return ""


async def _close_connections() -> None:
    # Connections opened by the hooks, or by middleware after the view (a session saved on
    # every request): Django keeps them per thread, so they are closed in the request's own
    # thread (thread-sensitive), before the first byte: an open stream never holds one.
    await sync_to_async(connections.close_all)()


async def _connections_closed() -> AsyncIterator[bytes]:
    """The body Django sends for a stream that ``pgsse.asgi.wrap()`` takes over."""
    await _close_connections()
    return
    yield b""  # an async generator with nothing to yield


def _stream_response(body: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type=CONTENT_TYPE)
    for header, value in STREAM_HEADERS.items():
        response[header] = value
    return response


#: The view with default options, for ``path("events/<str:channel>/", stream)`` in a
#: project that sets ``PGSSE["AUTHORIZE"]``.
stream = StreamView.as_view()
