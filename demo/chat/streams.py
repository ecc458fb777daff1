"""The chat's streams: a room page's, and the room list's (the user's own channel).

Both are ``pgsse.views.StreamView`` whose refusals answer in the API's JSON: 401 for
anonymous users (and, from :mod:`chat.auth`, for bad tokens), 404 alike for unknown rooms
and private rooms the user may not see, 503 when the database is unreachable.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from chat import access, conf, unread
from chat.auth import reader
from chat.errors import LOG_IN, ApiError, database_unavailable, json_error
from chat.models import Room
from pgsse.views import StreamView


class ChatStreamView(StreamView):
    """A StreamView answering refusals as the chat's API does."""

    def error_response(
        self, request: HttpRequest, status: int, message: str, headers: dict[str, str]
    ) -> HttpResponse:
        # The hooks have resolved the user already (no database access here).
        user = getattr(request, "user", None)
        if status == 403 and (user is None or not user.is_authenticated):
            status, message, headers = 401, LOG_IN, {**headers, "WWW-Authenticate": "Bearer"}
        response = json_error(status, message)
        for name, value in headers.items():
            response[name] = value
        return response

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().get(request, **kwargs)
        except (OperationalError, InterfaceError):
            return database_unavailable()


def _user(request: HttpRequest) -> Any:
    try:
        user = reader(request)
    except ApiError as exc:
        raise PermissionDenied(str(exc)) from exc
    if not user.is_authenticated and not conf.get("CHAT_ANONYMOUS_READ"):
        raise PermissionDenied(LOG_IN)
    return user


def room_channels(request: HttpRequest) -> list[str]:
    """The room's channels (messages, presence, typing), and the user's own channel
    (unread counts for the sidebar): one stream per page."""
    assert request.resolver_match is not None
    slug: str = request.resolver_match.kwargs["slug"]
    user = _user(request)
    room = Room.objects.filter(slug=slug).first()
    if room is None or not access.can_read(user, room):
        raise Http404(f"There is no room {slug!r} (or it is private).")
    request.chat_readable_channels = set(room.channels)  # type: ignore[attr-defined]
    return page_channels(room, user)


def page_channels(room: Room, user: Any) -> list[str]:
    """What a room page follows; its page-load position is taken over the same list."""
    own = [unread.user_channel(user.pk)] if user.is_authenticated else []
    return [*room.channels, *own]


def own_channels(request: HttpRequest) -> list[str]:
    user = _user(request)
    if not user.is_authenticated:
        raise PermissionDenied(LOG_IN)
    return [unread.user_channel(user.pk)]


def may_read(request: HttpRequest, channel: str) -> bool:
    """A user's own channel is theirs alone; a room's channels were checked with the room."""
    owner = unread.channel_owner(channel)
    if owner is not None:
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_authenticated and str(user.pk) == owner)
    return channel in getattr(request, "chat_readable_channels", set())


#: The room page's one stream: messages, presence, typing, and the user's unread counts.
room_events = ChatStreamView.as_view(channels=room_channels, authorize=may_read)
#: The room list's stream: the user's unread counts.
own_events = ChatStreamView.as_view(channels=own_channels, authorize=may_read)
