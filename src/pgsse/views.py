"""The stream endpoint as a Django view: route it with one ``path()``.

::

    from pgsse.views import StreamView

    urlpatterns = [
        # channel from the URL
        path("events/<str:channel>/", StreamView.as_view()),
        # or computed per request, with an authorization hook
        path("me/events/", StreamView.as_view(channels=my_channels, authorize=can_read)),
    ]

Everything that may touch the database (``channels``, ``authorize``) runs before the
stream starts, and the request's database connection is closed right after: an open
stream never holds a PostgreSQL connection. Bad requests are answered before streaming,
with a plain-text message saying what was wrong.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.utils.module_loading import import_string
from django.views import View

from pgsse.channels import InvalidChannel, validate_channel
from pgsse.conf import get_settings
from pgsse.hub import Hub, get_hub
from pgsse.position import canonical_channels
from pgsse.stream import event_stream

__all__ = ["StreamView", "allow_authenticated", "stream"]

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


def allow_authenticated(request: HttpRequest, channel: str) -> bool:
    """The default authorization hook: any logged-in user may read any channel."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


async def _call(hook: Callable[..., Any], *args: Any) -> Any:
    """Run a hook that may be sync (in the request's thread, ORM allowed) or async."""
    if inspect.iscoroutinefunction(hook):
        return await hook(*args)
    result = await sync_to_async(hook)(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class StreamView(View):
    """An SSE stream over one or more channels.

    - ``channels``: a callable ``(request) -> iterable of channel names``; by default the
      ``channel`` URL keyword argument.
    - ``authorize``: a callable ``(request, channel) -> bool``, sync or async, asked for each
      channel; any False answers 403 before the stream starts. Default: the hook named by
      ``PGSSE["AUTHORIZE"]``, itself :func:`allow_authenticated` by default.

    A stream over more than ``MAX_CHANNELS_PER_STREAM`` channels, or one more stream for a
    user who has ``MAX_STREAMS_PER_USER`` open in this process, is answered 429.

    Hooks may raise ``Http404`` or ``PermissionDenied`` (answered 404 and 403 with the
    exception's message). Every refusal goes through :meth:`error_response`: override it
    to answer in another format (JSON, say).
    """

    http_method_names = ["get"]
    channels: ChannelsHook | None = None
    authorize: AuthorizeHook | None = None

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        view = super().as_view(**initkwargs)
        # A stream is never one transaction: exempt it from ATOMIC_REQUESTS, which Django
        # refuses for async views ("You cannot use ATOMIC_REQUESTS with async views").
        view._non_atomic_requests = set(django_settings.DATABASES)  # type: ignore[attr-defined]
        return view

    async def http_method_not_allowed(  # type: ignore[override]  # async view: async answer
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        response = HttpResponseNotAllowed(["GET"], "An event stream only answers GET.\n")
        response["Content-Type"] = "text/plain; charset=utf-8"
        return response

    async def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
        hub = get_hub()
        async with hub.setup_slots:
            try:
                refusal, names, release = await self._check(request, kwargs, hub)
            except Http404 as exc:
                refusal, names, release = self._refuse(request, 404, str(exc)), [], None
            except PermissionDenied as exc:
                refusal, names, release = self._refuse(request, 403, str(exc)), [], None
            finally:
                # Give back the connection the hooks may have opened in this request's
                # thread: Django would otherwise keep it until the stream ends.
                await sync_to_async(connections.close_all)()
        if refusal is not None:
            return refusal
        resume_from = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
        stream = event_stream(hub, canonical_channels(names), resume_from, on_close=release)
        if release is not None:
            # A response that is never iterated (the client left at once) never runs the
            # stream's finally: give the place back when the generator is collected.
            weakref.finalize(stream, release)
        response = StreamingHttpResponse(stream, content_type="text/event-stream; charset=utf-8")
        for header, value in STREAM_HEADERS.items():
            response[header] = value
        return response

    def error_response(
        self, request: HttpRequest, status: int, message: str, headers: dict[str, str]
    ) -> HttpResponse:
        """The answer refusing a stream request: ``message`` says why, for people.

        ``headers`` holds what the answer must carry (``Retry-After`` on 429).
        Plain text by default; override it to answer in your API's format.
        """
        response = HttpResponse(message + "\n", status=status)
        response["Content-Type"] = "text/plain; charset=utf-8"
        for name, value in headers.items():
            response[name] = value
        return response

    def _refuse(self, request: HttpRequest, status: int, message: str) -> HttpResponse:
        headers = {}
        if status == 429:
            headers["Retry-After"] = str(max(1, round(get_settings().RETRY_MS / 1000)))
        return self.error_response(request, status, message or _DEFAULT_MESSAGES[status], headers)

    async def _check(
        self, request: HttpRequest, kwargs: dict[str, Any], hub: Hub
    ) -> tuple[HttpResponse | None, list[str], Callable[[], None] | None]:
        """The channels to stream and the release of the user's stream count, or the
        response refusing the request."""
        settings = get_settings()
        names = await self._channels(request, kwargs)
        if not names:
            return self._refuse(request, 400, "No channel given for this stream."), names, None
        if len(names) > settings.MAX_CHANNELS_PER_STREAM:
            message = (
                f"A stream may follow at most {settings.MAX_CHANNELS_PER_STREAM} channels;"
                f" this one asks for {len(names)}."
            )
            return self._refuse(request, 429, message), names, None
        try:
            for name in names:
                validate_channel(name)
        except InvalidChannel as exc:
            return self._refuse(request, 400, f"Invalid channel name: {exc}"), names, None
        authorize = self.authorize or import_string(settings.AUTHORIZE)
        for name in names:
            if not await _call(authorize, request, name):
                message = f"You may not read channel {name!r}."
                return self._refuse(request, 403, message), names, None
        client = await _call(_client_key, request)
        if not client:
            return None, names, None
        limit = settings.MAX_STREAMS_PER_USER
        if limit is not None and hub.streams_by_client[client] >= limit:
            message = f"You already have {limit} streams open; close one and retry."
            return self._refuse(request, 429, message), names, None
        # Counted now, with no await since the check: concurrent requests cannot all pass.
        return None, names, hub.reserve_stream(client)

    async def _channels(self, request: HttpRequest, kwargs: dict[str, Any]) -> list[str]:
        if self.channels is None:
            return [kwargs["channel"]] if "channel" in kwargs else []
        result = await _call(self.channels, request)
        return [result] if isinstance(result, str) else list(result)


def _client_key(request: HttpRequest) -> str:
    """Who a stream counts against: the logged-in user; anonymous streams are not counted."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return ""


_DEFAULT_MESSAGES = {404: "Not found.", 403: "You may not read this stream."}


#: The view with default options, for ``path("events/<str:channel>/", stream)``.
stream = StreamView.as_view()
