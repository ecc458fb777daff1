"""The API of what hangs off a message: its thread, and its reactions.

``GET /api/rooms/<slug>/messages/<id>/thread/?before=<id>&limit=50``: the thread's first
message and a page of its replies; ``POST /api/rooms/<slug>/messages/<id>/reactions/``
``{"emoji"}`` adds a reaction, ``DELETE .../reactions/<emoji>/`` takes it back. Errors
as in :mod:`chat.api`.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from chat import access, inputs, message_data, ratelimit, reactions, threads
from chat.api import find_room
from chat.auth import authenticate, reader
from chat.errors import ApiError, api_view
from chat.history import MAX_PAGE_SIZE, PAGE_SIZE
from chat.models import Room


@api_view(["GET"])
def thread(request: HttpRequest, slug: str, message_id: int) -> HttpResponse:
    """``{"root": <message or null>, "replies": [...oldest first], "has_more"}``; the id is
    the thread's first message's (a reply's thread is its ``thread.id``)."""
    user = reader(request)
    room = find_room(user, slug)
    limit = inputs.query_integer(request, "limit", PAGE_SIZE)
    before = inputs.query_integer(request, "before", None)
    assert limit is not None
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ApiError(400, f"'limit' must be between 1 and {MAX_PAGE_SIZE}.")
    root, replies, has_more = threads.thread_page(room, message_id, before, limit)
    described = message_data.describe([*([root] if root else []), *replies], room.slug, user)
    return JsonResponse(
        {
            "id": message_id,
            "root": described[0] if root else None,
            "replies": described[1:] if root else described,
            "has_more": has_more,
        }
    )


@api_view(["POST"])
def add_reaction(request: HttpRequest, slug: str, message_id: int) -> HttpResponse:
    """``{"emoji": "👍"}``: 201 with the message's reactions (200 if it was there already)."""
    user = authenticate(request)
    room = find_room(user, slug)
    emoji = reactions.clean_emoji(inputs.body(request).get("emoji"))
    return _react(request, user, room, message_id, emoji, add=True)


@api_view(["DELETE"])
def remove_reaction(request: HttpRequest, slug: str, message_id: int, emoji: str) -> HttpResponse:
    """Take one's ``emoji`` back: 200 with the message's reactions."""
    user = authenticate(request)
    room = find_room(user, slug)
    return _react(request, user, room, message_id, reactions.clean_emoji(emoji), add=False)


def _react(
    request: HttpRequest, user: User, room: Room, message_id: int, emoji: str, *, add: bool
) -> HttpResponse:
    if not access.can_post(user, room):
        raise ApiError(403, "Only members may react in this private room.")
    with transaction.atomic():
        ratelimit.check("reaction", request, user)
        answer = reactions.change(room, message_id, user, emoji, add=add)
    return JsonResponse(answer, status=201 if add and answer["changed"] else 200)
