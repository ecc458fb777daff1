"""Whom one may ``@mention`` in a room: the composer's autocomplete.

``GET /api/rooms/<slug>/people/?prefix=al`` answers ``{"people": ["alice", "alan"]}``: the
room's members whose username starts with the prefix (case folded), at most ``LIMIT``,
those who spoke lately first (as in Slack), then by name; never the asker. Private rooms
answer their members to members only (404 to anyone else, as every endpoint of them).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, JsonResponse

from chat.api import find_room
from chat.auth import reader
from chat.errors import ApiError, api_view, not_authenticated
from chat.inputs import clean_string
from chat.models import Message, Room

#: Names one answer holds, and the recent messages whose authors come first.
LIMIT = 8
RECENT_MESSAGES = 500
MAX_PREFIX_LENGTH = 150


def candidates(room: Room, prefix: str, asker_pk: int) -> list[str]:
    """Members of ``room`` whose username starts with ``prefix``: recent speakers first."""
    recent_ids = room.messages.order_by("-id").values("id")[:RECENT_MESSAGES]
    recent = (
        Message.objects.filter(id__in=recent_ids, author__membership__room=room)
        .filter(author_name__istartswith=prefix)
        .exclude(author_id=asker_pk)
        .order_by("-id")
        .values_list("author_name", flat=True)
    )
    names = list(dict.fromkeys(recent))[:LIMIT]
    if len(names) < LIMIT:
        members = (
            get_user_model()
            .objects.filter(membership__room=room, is_active=True, username__istartswith=prefix)
            .exclude(pk=asker_pk)
            .exclude(username__in=names)
            .order_by("username")
            .values_list("username", flat=True)
        )
        names += list(members[: LIMIT - len(names)])
    return names


@api_view(["GET"])
def people(request: HttpRequest, slug: str) -> HttpResponse:
    user = reader(request)
    if not user.is_authenticated:
        raise not_authenticated()
    room = find_room(user, slug)
    prefix = clean_string(request.GET.get("prefix", ""), "'prefix'")
    if len(prefix) > MAX_PREFIX_LENGTH:
        raise ApiError(400, f"'prefix' is at most {MAX_PREFIX_LENGTH} characters.")
    return JsonResponse({"people": candidates(room, prefix, user.pk)})
