"""The JSON API of conversations: the rooms one has, a room's settings and members, direct
conversations, one's profile, and a page's stream following new rooms.

As the rest of the API (:mod:`chat.api`): a session with its CSRF token or a bearer
token; every error ``{"error": "..."}``; private rooms 404 to everyone else; every write
rate limited.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

import pgsse
from chat import conf, conversations, inputs, profiles, ratelimit, room_settings, rooms, unread
from chat.api import find_room
from chat.auth import authenticate, reader
from chat.errors import ApiError, api_view, not_authenticated
from chat.members import members_of
from chat.models import Room
from chat.sidebar import Entry, entry_for, sidebar_for
from chat.streams import follow_query, page_channels, readable


def entry_json(entry: Entry) -> dict[str, Any]:
    """A room as the API shows it to one user."""
    data: dict[str, Any] = {
        "id": entry.pk,
        "slug": entry.slug,
        "name": entry.name,
        "topic": entry.topic,
        "private": entry.private,
        "direct": entry.direct,
        "joined": entry.joined,
        "url": f"/rooms/{entry.slug}/",
    }
    if entry.direct:
        data["people"] = [p.as_data() for p in entry.people]
    return data


def room_lists(request: HttpRequest) -> HttpResponse:
    """``GET /api/rooms/``: the reader's rooms, direct conversations and all public rooms,
    each sorted as the sidebar sorts them, with unread counts for the rooms one is in."""
    user = reader(request)
    if not user.is_authenticated:
        raise not_authenticated()
    counts = unread.counts_for(user)
    shown = sidebar_for(user, counts)

    def listed(entries: list[Entry]) -> list[dict[str, Any]]:
        found = []
        for entry in entries:
            data = entry_json(entry)
            if entry.joined:
                data.update(unread=entry.unread, mentions=entry.mentions)
            found.append(data)
        return found

    return JsonResponse(
        {
            "rooms": listed(shown.mine),
            "direct": listed(shown.direct),
            "public": listed(shown.public),
        }
    )


def _room_json(room: Room, user: Any) -> dict[str, Any]:
    data = entry_json(entry_for(room, user))
    owner = room.owner.get_username() if room.owner is not None else None
    return {**data, "owner": owner}


@api_view(["GET", "PATCH", "DELETE"])
def room(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the room; PATCH ``{"name", "topic", "owner"}`` (any of them): its owner
    changes its settings; DELETE: its owner deletes it."""
    if request.method == "GET":
        user = reader(request)
        return JsonResponse(_room_json(find_room(user, slug), user))
    user = authenticate(request)
    found = find_room(user, slug)
    data = inputs.body(request) if request.method == "PATCH" else {}
    unknown = set(data) - {"name", "topic", "owner"}
    if unknown:
        raise ApiError(400, f"Unknown settings {sorted(unknown)}: send name, topic or owner.")
    with transaction.atomic():
        ratelimit.check("settings", request, user)
        try:
            if request.method == "DELETE":
                room_settings.delete(found, user)
                return HttpResponse(status=204)
            if not data:
                raise rooms.RoomError("Send the settings to change: name, topic or owner.")
            if "name" in data:
                room_settings.rename(found, user, data["name"])
            if "topic" in data:
                room_settings.set_topic(found, user, data["topic"])
            if "owner" in data:
                room_settings.hand_over(found, user, data["owner"])
        except rooms.RoomError as exc:
            raise ApiError(exc.status, str(exc)) from exc
    return JsonResponse(_room_json(found, user))


@api_view(["GET", "POST"])
def members(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the room's members (the first 200 by name, and how many in all); POST
    ``{"username"}``: the owner of a private room invites someone."""
    if request.method == "GET":
        found = find_room(reader(request), slug)
        listed, total = members_of(found)
        owner = found.owner.get_username() if found.owner is not None else None
        return JsonResponse(
            {"members": [p.as_data() for p in listed], "count": total, "owner": owner}
        )
    user = authenticate(request)
    found = find_room(user, slug)
    username = inputs.body(request).get("username")
    if not isinstance(username, str) or not username.strip():
        raise ApiError(400, 'Name who to invite: {"username": "bob"}.')
    with transaction.atomic():
        ratelimit.check("membership", request, user)
        try:
            invited = rooms.invite(found, user, username)
        except rooms.RoomError as exc:
            raise ApiError(exc.status, str(exc)) from exc
    return JsonResponse(profiles.person(invited).as_data(), status=201)


@api_view(["POST"])
def direct(request: HttpRequest) -> HttpResponse:
    """``{"users": ["bob", "carol"]}``: the direct conversation with these people, 201 if
    new, 200 if it existed."""
    user = authenticate(request)
    data = inputs.body(request)
    with transaction.atomic():
        ratelimit.check("direct", request, user)
        try:
            names = conversations.wanted_usernames(data.get("users"))
            if not names:
                raise rooms.RoomError('Name someone to talk to: {"users": ["bob"]}.')
            found, new = conversations.start(user, names)
        except rooms.RoomError as exc:
            raise ApiError(exc.status, str(exc)) from exc
    return JsonResponse(_room_json(found, user), status=201 if new else 200)


@api_view(["GET", "PATCH"])
def me(request: HttpRequest) -> HttpResponse:
    """GET: your profile; PATCH ``{"display_name"}`` ("" for none)."""
    if request.method == "GET":
        user = reader(request)
        if not user.is_authenticated:
            raise not_authenticated()
    else:
        user = authenticate(request)
        data = inputs.body(request)
        if set(data) != {"display_name"}:
            raise ApiError(400, 'Send {"display_name": "..."} ("" for none).')
        with transaction.atomic():
            ratelimit.check("profile", request, user)
            profiles.set_display_name(user, data["display_name"])
    shown = profiles.person(user)
    return JsonResponse({"user": shown.username, "name": shown.name})


@api_view(["GET"])
def follow(request: HttpRequest) -> HttpResponse:
    """A page that starts following rooms it did not (an invitation, a room joined, a new
    direct conversation), or stops, reopens its stream from here.

    ``?room=<slug>`` (a room page; none for the room list), ``from=<ids>`` (the rooms it
    followed), ``follow=<ids>`` (those it wants now) and ``last_event_id=<position>`` (its
    stream's). Answers ``{"position", "follow", "followQuery", "unread"}``: the position
    carried over (what the page reached on the channels it keeps; the new rooms from now,
    pgsse.carry_position), the rooms it may follow, and their counts, read after.
    """
    user = reader(request)
    if not user.is_authenticated:
        raise not_authenticated()
    slug = request.GET.get("room")
    page_room = find_room(user, slug) if slug else None
    most = conf.live_rooms()
    before = inputs.query_ids(request, "from", most) or []
    wanted = inputs.query_ids(request, "follow", most) or []
    wanted = readable(user, [pk for pk in wanted if page_room is None or pk != page_room.pk])
    position = request.GET.get("last_event_id", "")
    try:
        carried = pgsse.carry_position(
            position,
            page_channels(page_room, user, before),
            page_channels(page_room, user, wanted),
        )
    except pgsse.InvalidPosition as exc:
        raise ApiError(
            400, f"'last_event_id' is not a position of that page's stream: {exc}"
        ) from exc
    counts = unread.counts_for(user, [pk for pk in wanted if pk not in before])
    return JsonResponse(
        {
            "position": carried,
            "follow": wanted,
            "followQuery": follow_query(wanted),
            "unread": [count.as_page_data() for count in counts.values()],
        }
    )
