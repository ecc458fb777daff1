"""The chat's HTTP API: JSON in, JSON out, for the page's script, bots and benchmarks.

Authentication (:mod:`chat.auth`): a session (with the CSRF token in ``X-CSRFToken`` for
writes) or a per-user token (``Authorization: Bearer <token>``, see ``chat_token``).
Every error is ``{"error": "<what was wrong and what is accepted>"}`` (:mod:`chat.errors`):
400 invalid, 401 not authenticated, 403 not allowed, 404 no such room (or a private room
you may not see) or message, 405 method, 413 too long, 429 rate limited (with
``Retry-After``), 503 database unreachable.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

import pgsse
from chat import (
    access,
    attachments,
    conf,
    history,
    inputs,
    message_data,
    presence,
    ratelimit,
    threads,
    unread,
    uploads,
)
from chat.auth import authenticate, reader
from chat.errors import ApiError, api_view, not_authenticated
from chat.history import MAX_PAGE_SIZE, PAGE_SIZE
from chat.models import Message, Room
from chat.rooms import RoomError, add_member, create_room, remove

#: Rooms one request for unread counts may name.
UNREAD_ROOMS_PER_REQUEST = 100
MAX_TAB_LENGTH = 64
#: Where a history page starts (at most one of them).
HISTORY_ANCHORS = ("before", "after", "around")


def find_room(user: Any, slug: str) -> Room:
    """The room ``user`` may read: 401 for anonymous users (unless anonymous reading is
    on), and 404 alike for unknown rooms and private rooms ``user`` may not see."""
    if not user.is_authenticated and not conf.get("CHAT_ANONYMOUS_READ"):
        raise not_authenticated()
    slug = inputs.clean_string(slug, "A room's name")
    room = Room.objects.filter(slug=slug).first()
    if room is None or not access.can_read(user, room):
        raise ApiError(404, f"There is no room {slug!r} (or it is private).")
    return room


@api_view(["GET", "POST"])
def messages(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: a page of history (``?before=``, ``?after=`` or ``?around=<id>``, ``?limit=``);
    POST: post ``{"text"}``, or ``{"text", "reply_to": <id>}`` to answer a message, or a
    multipart form with ``text``, ``reply_to`` and up to 4 ``file`` fields (chat.uploads)."""
    if request.method == "GET":
        return _history(request, slug)
    user = authenticate(request)
    room = find_room(user, slug)
    if not access.can_post(user, room):
        raise ApiError(403, "Only members may post in this private room.")
    data = inputs.body(request)
    posted = uploads.posted_files(request)
    text = inputs.message_text(data, with_files=bool(posted))
    reply_to = inputs.optional_id(data, "reply_to") or None
    if posted:
        # Counted before the files are decoded and stored: a refused upload costs neither.
        with transaction.atomic():
            for _ in posted:
                ratelimit.check("upload", request, user)
    files = [uploads.check(uploaded) for uploaded in posted]
    with attachments.stored(files), transaction.atomic():
        ratelimit.check("message", request, user)
        target = threads.target(room, reply_to) if reply_to is not None else None
        add_member(room, user, by_posting=True)  # posting in a public room joins it
        message = Message.objects.create(
            room=room,
            author=user,
            author_name=user.get_username(),
            text=text,
            attachments=[attachments.public_data(checked) for checked in files],
            reply_to=target.reply_to if target else None,
            thread_id=target.thread_id if target else None,
        )
        attachments.record(message, files)
        # What one posts is read: the poster's own position follows.
        unread.mark_read(room, user, message.id)
        answer = message_data.describe_one(message, room.slug, user)
    return JsonResponse(answer, status=201)


def _history(request: HttpRequest, slug: str) -> HttpResponse:
    user = reader(request)
    room = find_room(user, slug)
    limit = inputs.query_integer(request, "limit", PAGE_SIZE)
    assert limit is not None
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ApiError(400, f"'limit' must be between 1 and {MAX_PAGE_SIZE}.")
    anchors = {name: inputs.query_integer(request, name, None) for name in HISTORY_ANCHORS}
    given = {name: value for name, value in anchors.items() if value is not None}
    if len(given) > 1:
        raise ApiError(400, "Give at most one of 'before', 'after' and 'around'.")
    return JsonResponse(history.page(room, user, limit=limit, **given))


@api_view(["GET", "PATCH", "DELETE"])
def message(request: HttpRequest, slug: str, message_id: int) -> HttpResponse:
    """GET: one message; PATCH ``{"text"}``: the author edits; DELETE: the author or the
    room's owner."""
    if request.method == "GET":
        user = reader(request)
        room = find_room(user, slug)
        found = Message.objects.filter(room=room, id=message_id).first()
        if found is None:
            raise ApiError(404, f"There is no message {message_id} in this room.")
        return JsonResponse(message_data.describe_one(found, room.slug, user))
    user = authenticate(request)
    room = find_room(user, slug)
    data = inputs.body(request) if request.method == "PATCH" else {}
    with transaction.atomic():
        found = Message.objects.select_for_update().filter(room=room, id=message_id).first()
        if found is None:
            raise ApiError(404, f"There is no message {message_id} in this room.")
        if request.method == "DELETE":
            if not access.can_delete(user, found, room):
                raise ApiError(403, "Only its author or the room's owner may delete a message.")
            ratelimit.check("edit", request, user)
            found.delete()
            return HttpResponse(status=204)
        if not access.can_edit(user, found):
            raise ApiError(403, "Only its author may edit a message.")
        # A message with files may lose its text; they stay.
        text = inputs.message_text(data, with_files=bool(found.attachments))
        ratelimit.check("edit", request, user)
        found.text = text
        found.save(update_fields=["text"])  # the model sets edited_at
        answer = message_data.describe_one(found, room.slug, user)
    return JsonResponse(answer)


@api_view(["GET", "POST"])
def rooms(request: HttpRequest) -> HttpResponse:
    """GET: your rooms, direct conversations and all public rooms
    (:func:`chat.conversation_api.room_lists`). POST: create a room from ``{"name": ...,
    "private": false}``; the creator owns and joins it."""
    if request.method == "GET":
        from chat.conversation_api import room_lists

        return room_lists(request)
    user = authenticate(request)
    data = inputs.body(request)
    private = data.get("private", False)
    if not isinstance(private, bool):
        raise ApiError(400, "'private' must be true or false.")
    with transaction.atomic():
        ratelimit.check("room", request, user)
        try:
            room = create_room(user, data.get("name"), private)
        except RoomError as exc:
            raise ApiError(400, str(exc)) from exc
    data = {"slug": room.slug, "name": room.name, "private": room.private}
    return JsonResponse({**data, "url": f"/rooms/{room.slug}/"}, status=201)


@api_view(["DELETE"])
def member(request: HttpRequest, slug: str, username: str) -> HttpResponse:
    """The owner of a private room removes a member: their streams of the room end at
    once, on every process, and they leave its presence (see chat.revocation)."""
    user = authenticate(request)
    room = find_room(user, slug)
    with transaction.atomic():
        ratelimit.check("removal", request, user)
        try:
            remove(room, user, username)
        except RoomError as exc:
            raise ApiError(exc.status, str(exc)) from exc
    return HttpResponse(status=204)


def _tab(data: dict[str, Any]) -> str:
    tab = data.get("tab")
    if not isinstance(tab, str) or not 1 <= len(tab) <= MAX_TAB_LENGTH:
        raise ApiError(400, f"Send the page's 'tab' id (1 to {MAX_TAB_LENGTH} characters).")
    return inputs.clean_string(tab, "'tab'")


@api_view(["POST"])
def heartbeat(request: HttpRequest, slug: str) -> HttpResponse:
    """An open page says it is still here (``{"tab"}``; ``"leave": true`` when it goes)."""
    user = reader(request)
    room = find_room(user, slug)
    data = inputs.body(request)
    with transaction.atomic():
        ratelimit.check("presence", request, user)
        if not user.is_authenticated:
            # An anonymous reader counts nobody, but helps notice tabs that went away.
            presence.update(room, None, "")
            return HttpResponse(status=204)
        user = authenticate(request)  # a write: the session's CSRF check applies
        leaving = data.get("leave") in (True, "1", "true")
        try:
            presence.update(room, user, _tab(data), leaving=leaving)
        except presence.TooManyTabs as exc:
            raise ApiError(429, str(exc), Retry_After=str(exc.retry_after)) from exc
    return HttpResponse(status=204)


@api_view(["POST"])
def typing(request: HttpRequest, slug: str) -> HttpResponse:
    """Tell the room that the user is typing (rate limited; never stored as a message).

    ``{"after": <id>}`` names the newest message of this user the page knows of: readers
    drop a notice about a message that has reached them already.
    """
    user = authenticate(request)
    room = find_room(user, slug)
    if not access.can_post(user, room):
        raise ApiError(403, "Only members may type in this private room.")
    after = inputs.optional_id(inputs.body(request), "after")
    with transaction.atomic():
        ratelimit.check("typing", request, user, scope=str(room.pk))
        pgsse.publish(room.typing_channel, "typing", {"user": user.get_username(), "after": after})
    return HttpResponse(status=204)


@api_view(["GET"])
def unread_counts(request: HttpRequest) -> HttpResponse:
    """Your rooms' unread counts (``?rooms=<id>,<id>``: only those), as pages get them
    with the page: ``{"rooms": [{"room_id", "room", "read", "unread", "mentions", "ids",
    "mentioning"}]}``."""
    user = reader(request)
    if not user.is_authenticated:
        raise not_authenticated()
    rooms = inputs.query_ids(request, "rooms", UNREAD_ROOMS_PER_REQUEST)
    counts = unread.counts_for(user, rooms)
    return JsonResponse({"rooms": [count.as_page_data() for count in counts.values()]})


@api_view(["POST"])
def read(request: HttpRequest, slug: str) -> HttpResponse:
    """The page has shown the room's messages up to ``{"up_to": <id>}`` (all without it)."""
    user = authenticate(request)
    room = find_room(user, slug)
    data = inputs.body(request)
    up_to = inputs.optional_id(data, "up_to") or None
    with transaction.atomic():
        ratelimit.check("read", request, user)
        unread.mark_read(room, user, up_to)
    return HttpResponse(status=204)
