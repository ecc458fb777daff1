"""The chat's pages: accounts, the room list, a room, membership forms, the room stream.

The JSON endpoints are in :mod:`chat.api`. Uses only pgsse's public API.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import pgsse
from chat import access, conf, presence, rooms
from chat.api import PAGE_SIZE, ApiError, history_page, reader
from chat.models import MAX_MESSAGE_LENGTH, Room
from pgsse.views import StreamView


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """A new account (Django's password validation applies), logged in at once."""
    form: UserCreationForm[User] = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        return redirect(_next_url(request))
    return render(request, "registration/signup.html", {"form": form, "next": _next_url(request)})


def _next_url(request: HttpRequest) -> str:
    """Where to go after signing up: a page of this site only (no open redirect)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if safe else "/"


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.is_authenticated and not conf.get("CHAT_ANONYMOUS_READ"):
        return redirect_to_login(request.get_full_path())
    visible = access.visible_rooms(user)
    joined: set[int] = set()
    if user.is_authenticated:
        joined = set(visible.filter(membership__user_id=user.pk).values_list("pk", flat=True))
    return render(
        request,
        "chat/index.html",
        {"rooms": visible, "joined": joined, "max_name_length": rooms.MAX_NAME_LENGTH},
    )


@require_POST
def create(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login("/")
    try:
        room = rooms.create_room(
            request.user, request.POST.get("name", ""), request.POST.get("private") == "on"
        )
    except rooms.RoomError as exc:
        messages.error(request, str(exc))
        return redirect("chat:index")
    return redirect("chat:room", slug=room.slug)


def _readable_room(request: HttpRequest, slug: str) -> Room | HttpResponse:
    room = get_object_or_404(Room, slug=slug)
    if access.can_read(request.user, room):
        return room
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return HttpResponseForbidden(
        render_to_string("chat/forbidden.html", {"room": room}, request=request)
    )


@require_GET
def room(request: HttpRequest, slug: str) -> HttpResponse:
    current = _readable_room(request, slug)
    if isinstance(current, HttpResponse):
        return current
    # Position first, history second: whatever commits in between is replayed by the
    # stream (and recognised by its message id), never lost.
    position = pgsse.current_position(current.channels)
    page = history_page(current, None, PAGE_SIZE)
    user = request.user
    return render(
        request,
        "chat/room.html",
        {
            "room": current,
            "rooms": access.visible_rooms(user),
            "history": page,
            "present": presence.present_users(current),
            "position": position,
            "is_member": access.is_member(user, current),
            "can_post": access.can_post(user, current),
            "is_owner": user.is_authenticated and current.owner_id == user.pk,
            "max_length": MAX_MESSAGE_LENGTH,
            "page_config": {
                "room": current.slug,
                "user": user.get_username() if user.is_authenticated else "",
                "isOwner": user.is_authenticated and current.owner_id == user.pk,
                "position": position,
                "hasMore": page["has_more"],
                "heartbeatSeconds": conf.get("CHAT_PRESENCE_HEARTBEAT"),
            },
        },
    )


def _membership_action(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(f"/rooms/{slug}/")
    current = get_object_or_404(Room, slug=slug)
    try:
        if action == "join":
            rooms.join(current, request.user)
        elif action == "leave":
            rooms.leave(current, request.user)
            if current.private:
                return redirect("chat:index")
        else:
            invited = rooms.invite(current, request.user, request.POST.get("username", ""))
            messages.success(request, f"{invited.get_username()} may now enter #{current.slug}.")
    except rooms.RoomError as exc:
        messages.error(request, str(exc))
    return redirect("chat:room", slug=current.slug)


@require_POST
def join(request: HttpRequest, slug: str) -> HttpResponse:
    return _membership_action(request, slug, "join")


@require_POST
def leave(request: HttpRequest, slug: str) -> HttpResponse:
    return _membership_action(request, slug, "leave")


@require_POST
def invite(request: HttpRequest, slug: str) -> HttpResponse:
    return _membership_action(request, slug, "invite")


def _room_channels(request: HttpRequest) -> list[str]:
    assert request.resolver_match is not None
    slug: Any = request.resolver_match.kwargs["slug"]
    try:
        return Room.objects.get(slug=slug).channels
    except Room.DoesNotExist as exc:
        raise Http404(f"There is no room {slug!r}.") from exc


def _may_read(request: HttpRequest, channel: str) -> bool:
    # The room's three channels (messages, presence, typing) share its permission.
    slug = channel.split(":", 1)[1]
    current = Room.objects.filter(slug=slug).first()
    if current is None:
        return False
    try:
        user = reader(request)  # the session's user, or a bearer token's (bots)
    except ApiError:
        return False
    return access.can_read(user, current)


#: The room page's one stream: messages, presence and typing. 403 before streaming for
#: anyone who may not read the room.
room_events = StreamView.as_view(channels=_room_channels, authorize=_may_read)
