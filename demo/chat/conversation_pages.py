"""Pages that start and shape conversations: a direct conversation started from a name
or a member list, and a room's settings (its owner renames it, sets its topic, hands it
over or deletes it). The API's twins are in :mod:`chat.conversation_api`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from chat import conversations, ratelimit, room_settings
from chat.members import members_of
from chat.models import Room
from chat.rooms import MAX_NAME_LENGTH, RoomError
from chat.views import readable_room, retrying_page, too_many


@require_POST
@retrying_page
def start_direct(request: HttpRequest) -> HttpResponse:
    """The *Message* buttons of member lists, and the sidebar's *Message people* form:
    on to the conversation with those people (the one that exists, or a new one)."""
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login("/")
    try:
        with transaction.atomic():
            ratelimit.check("direct", request, user)
            names = conversations.wanted_usernames(request.POST.get("users", ""))
            if not names:
                raise RoomError("Name someone to talk to: their username.")
            room, _ = conversations.start(user, names)
    except ratelimit.RateLimited as exc:
        return too_many(request, exc)
    except RoomError as exc:
        messages.error(request, str(exc))
        return redirect(_back(request))
    return redirect("chat:room", slug=room.slug)


def _back(request: HttpRequest) -> str:
    """The page a form was sent from, if it is one of ours; else the room list."""
    referer = request.headers.get("Referer", "")
    origin = f"{request.scheme}://{request.get_host()}/"
    return referer if referer.startswith(origin) else "/"


@require_http_methods(["GET", "POST"])
@retrying_page
def settings_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The owner's settings of a room: name and topic, ownership, deletion."""
    room = readable_room(request, slug)
    if isinstance(room, HttpResponse):
        return room
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if room.direct or room.owner_id != user.pk:
        message = (
            "A direct conversation has no settings."
            if room.direct
            else f"Only the owner of {room.label} changes its settings."
        )
        return render(
            request, "chat/forbidden.html", {"message": message, "room": room}, status=403
        )
    if request.method == "POST":
        done = _change(request, room, request.POST.get("action", ""))
        if done is not None:
            return done
    members, _ = members_of(room)
    return render(
        request,
        "chat/room_settings.html",
        {
            "room": room,
            "heirs": [m for m in members if m.username != user.get_username()],
            "max_name_length": MAX_NAME_LENGTH,
            "max_topic_length": room_settings.MAX_TOPIC_LENGTH,
        },
    )


def _change(request: HttpRequest, room: Room, action: str) -> HttpResponse | None:
    """Apply one of the settings forms; the answer, or None to show the page again
    (with the error among its notices)."""
    user: Any = request.user
    try:
        with transaction.atomic():
            ratelimit.check("settings", request, user)
            if action == "rename":
                if request.POST.get("name", room.name) != room.name:
                    room_settings.rename(room, user, request.POST.get("name", ""))
                room_settings.set_topic(room, user, request.POST.get("topic", ""))
                messages.success(request, f"Saved: {room.label}.")
                return redirect("chat:room", slug=room.slug)
            if action == "hand_over":
                heir = room_settings.hand_over(room, user, request.POST.get("owner", ""))
                messages.success(request, f"{heir.get_username()} owns {room.label} now.")
                return redirect("chat:room", slug=room.slug)
            if action == "delete":
                if request.POST.get("confirm") != "yes":
                    raise RoomError(
                        "Tick the box to confirm that the room goes, with its messages."
                    )
                label = room.label
                room_settings.delete(room, user)
                messages.success(request, f"{label} was deleted, with its messages.")
                return redirect("chat:index")
            raise RoomError("Choose what to change: the name and topic, the owner, or deletion.")
    except ratelimit.RateLimited as exc:
        return too_many(request, exc)
    except RoomError as exc:
        room.refresh_from_db()
        messages.error(request, str(exc))
    return None
