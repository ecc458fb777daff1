"""The chat's streams: a room page's, and the room list's (the user's own channel).

Both are ``pgsse.views.StreamView`` whose refusals answer in the API's JSON: 401 for
anonymous users (and, from :mod:`chat.auth`, for bad tokens), 404 alike for unknown rooms
and private rooms the user may not see, 400 for a bad ``follow``, 503 when the database
is unreachable.

Both also follow the messages of the rooms the page counts live (``?follow=<pk>,<pk>``,
at most ``conf.live_rooms()``), chosen by the page when it was rendered, so that a
reconnect resumes the same channels. A followed room the user may no longer read is left
out: the stream's channels then differ from its position's, pgsse answers ``reset``, and
the page reloads without it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from chat import access, conf, directory
from chat.auth import reader
from chat.errors import LOG_IN, ApiError, database_unavailable, json_error
from chat.inputs import is_id_text
from chat.models import Room
from chat.own_channel import channel_owner, user_channel
from pgsse.views import StreamView

#: The query parameter naming the rooms a stream follows besides its own channels.
FOLLOW = "follow"


class BadFollow(ValueError):
    """A ``follow`` parameter that is not a short list of room ids."""


def follow_parameter(request: HttpRequest) -> list[int]:
    """The room pks of ``?follow=``, each once; raises :class:`BadFollow`."""
    text = request.GET.get(FOLLOW, "")
    if not text:
        return []
    parts = text.split(",")
    limit = conf.live_rooms()
    if len(parts) > limit or not all(is_id_text(part) for part in parts):
        raise BadFollow(
            f"'{FOLLOW}' is a comma-separated list of at most {limit} room ids, like '3,17'."
        )
    return list(dict.fromkeys(int(part) for part in parts))


def follow_query(pks: list[int]) -> str:
    """The query string of a stream following the rooms ``pks`` ('' for none)."""
    return f"?{FOLLOW}={','.join(str(pk) for pk in pks)}" if pks else ""


def readable(user: Any, pks: list[int]) -> list[int]:
    """Those of the rooms ``pks`` that ``user`` may read, in the order given."""
    if not pks or not user.is_authenticated:
        return []
    found = set(access.visible_rooms(user).filter(pk__in=pks).values_list("pk", flat=True))
    return [pk for pk in pks if pk in found]


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
            follow_parameter(request)
        except BadFollow as exc:
            return json_error(400, str(exc))
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
    """The room's channels (messages, presence, typing), the directory, the user's own
    channel, and the followed rooms' messages (the sidebar's counts): one stream per page."""
    assert request.resolver_match is not None
    slug: str = request.resolver_match.kwargs["slug"]
    user = _user(request)
    room = access.readable_room(user, slug)
    if room is None:
        raise Http404(f"There is no room {slug!r} (or it is private).")
    followed = readable(user, [pk for pk in follow_parameter(request) if pk != room.pk])
    channels = page_channels(room, user, followed)
    request.chat_readable_channels = set(channels)  # type: ignore[attr-defined]
    return channels


def page_channels(room: Room | None, user: Any, followed: list[int]) -> list[str]:
    """What a page follows (a room page: its room; the room list: ``room`` None); its
    page-load position is taken over the same list. Every page follows the directory
    (public rooms and people's names, for its sidebar)."""
    own = [user_channel(user.pk)] if user.is_authenticated else []
    shown = room.channels if room is not None else []
    followed_channels = [Room.channel_of(pk) for pk in followed]
    return [*shown, directory.CHANNEL, *own, *followed_channels]


def own_channels(request: HttpRequest) -> list[str]:
    user = _user(request)
    if not user.is_authenticated:
        raise PermissionDenied(LOG_IN)
    channels = page_channels(None, user, readable(user, follow_parameter(request)))
    request.chat_readable_channels = set(channels)  # type: ignore[attr-defined]
    return channels


def may_read(request: HttpRequest, channel: str) -> bool:
    """A user's own channel is theirs alone; rooms' channels were checked with the rooms."""
    owner = channel_owner(channel)
    if owner is not None:
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_authenticated and str(user.pk) == owner)
    return channel in getattr(request, "chat_readable_channels", set())


#: The room page's one stream: messages, presence, typing, the user's own channel and the
#: followed rooms' messages.
room_events = ChatStreamView.as_view(channels=room_channels, authorize=may_read)
#: The room list's stream: the user's own channel and the followed rooms' messages.
own_events = ChatStreamView.as_view(channels=own_channels, authorize=may_read)
