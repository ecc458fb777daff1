"""The chat's pages: accounts, the room list, a room, and the membership forms.

The JSON endpoints are in :mod:`chat.api`, the streams in :mod:`chat.streams`. Uses only
pgsse's public API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import redirect_to_login
from django.db import DatabaseError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import pgsse
from chat import access, conf, conflicts, history, presence, ratelimit, rooms, unread
from chat.account_forms import SignupForm
from chat.api import UNREAD_ROOMS_PER_REQUEST
from chat.backends import ACCOUNT_BACKEND
from chat.inputs import is_id_text
from chat.members import members_of
from chat.models import MAX_MESSAGE_LENGTH, Room
from chat.profiles import Person, people_named
from chat.sidebar import Sidebar, entry_for, sidebar_for
from chat.streams import follow_query, page_channels


def too_many(request: HttpRequest, exc: ratelimit.RateLimited) -> HttpResponse:
    response = render(request, "chat/too_many.html", {"message": str(exc)}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


def retrying_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A form's view run again when its transaction collided with another (see
    chat.conflicts); past the last attempt, a page that says so (503, Retry-After)."""
    run = conflicts.retrying(view)

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return run(request, *args, **kwargs)
        except DatabaseError as exc:
            kind = conflicts.conflict_of(exc)
            if kind is None:
                raise
            message = conflicts.busy_message(kind)
            response = render(request, "chat/busy.html", {"message": message}, status=503)
            response["Retry-After"] = str(conflicts.RETRY_AFTER)
            return response

    return wrapped


def blank_login_form(request: HttpRequest) -> AuthenticationForm:
    """The log-in form, not bound to what was posted (no errors), the username kept."""
    return AuthenticationForm(request, initial={"username": request.POST.get("username", "")})


@require_http_methods(["GET", "POST"])
@retrying_page
def signup(request: HttpRequest) -> HttpResponse:
    """A new account (Django's password validation applies), logged in at once."""
    form = SignupForm(request.POST or None)
    context = {"form": form, "next": _next_url(request)}
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                ratelimit.check("signup", request)
                user = form.save()
        except ratelimit.RateLimited as exc:
            response = render(
                request, "registration/signup.html", {**context, "refused": str(exc)}, status=429
            )
            response["Retry-After"] = str(exc.retry_after)
            return response
        login(request, user, backend=ACCOUNT_BACKEND)
        return redirect(_next_url(request))
    return render(request, "registration/signup.html", context)


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
    followed = unread.most_active(user, conf.live_rooms())
    # Position first, counts and rooms second: a change committed in between is replayed,
    # and recognised by its message or room id.
    position = ""
    if user.is_authenticated:
        position = pgsse.current_position(page_channels(None, user, followed))
    counts = unread.counts_for(user)
    shown = sidebar_for(user, counts)
    return render(
        request,
        "chat/index.html",
        {
            "sidebar": shown,
            "has_private": any(entry.private for entry in shown.mine),
            "max_name_length": rooms.MAX_NAME_LENGTH,
            "page_config": {
                "page": "index",
                "user": user.get_username() if user.is_authenticated else "",
                **_sidebar_config(shown, []),
                **_unread_config(position, followed, counts),
            },
        },
    )


def _sidebar_config(shown: Sidebar, people: Iterable[Person]) -> dict[str, Any]:
    """What the page's scripts need to keep names live: every person the page names (by
    username: their display name), and the people of each direct conversation."""
    named = {p.username: p.name for p in people}
    direct: dict[int, list[dict[str, str]]] = {}
    for entry in shown.direct:
        direct[entry.pk] = [p.as_data() for p in entry.people]
        named.update((p.username, p.name) for p in entry.people)
    return {"people": named, "directPeople": direct}


def _unread_config(
    position: str, followed: list[int], counts: dict[int, unread.RoomCount]
) -> dict[str, Any]:
    """What chat.js needs to count unread messages: the stream's position and the rooms
    it follows besides the page's own, every membership's count at page load, and how
    often to refresh those of the rooms not followed."""
    return {
        "position": position,
        "follow": followed,
        "followQuery": follow_query(followed),
        "liveRooms": conf.live_rooms(),
        "unread": [count.as_page_data() for count in counts.values()],
        "unreadRefreshSeconds": conf.get("CHAT_UNREAD_REFRESH"),
        "unreadRoomsPerRequest": UNREAD_ROOMS_PER_REQUEST,
    }


@require_POST
@retrying_page
def create(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login("/")
    try:
        with transaction.atomic():
            ratelimit.check("room", request, request.user)
            room = rooms.create_room(
                request.user, request.POST.get("name", ""), request.POST.get("private") == "on"
            )
    except ratelimit.RateLimited as exc:
        return too_many(request, exc)
    except rooms.RoomError as exc:
        messages.error(request, str(exc))
        return redirect("chat:index")
    return redirect("chat:room", slug=room.slug)


def readable_room(request: HttpRequest, slug: str) -> Room | HttpResponse:
    """The room, or: log in first (anonymous visitors), or 404, alike for unknown rooms
    and for private rooms the user may not see."""
    if not request.user.is_authenticated and not conf.get("CHAT_ANONYMOUS_READ"):
        return redirect_to_login(request.get_full_path())
    room = Room.objects.filter(slug=slug).first()
    if room is None or not access.can_read(request.user, room):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise Http404(f"There is no room #{slug} (or it is private).")
    return room


@require_GET
@retrying_page
def room(request: HttpRequest, slug: str) -> HttpResponse:
    current = readable_room(request, slug)
    if isinstance(current, HttpResponse):
        return current
    user = request.user
    followed = unread.most_active(user, conf.live_rooms(), exclude=current.pk)
    # Position first, history and counts second: whatever commits in between is replayed
    # by the stream (and recognised by its message id), never lost.
    position = pgsse.current_position(page_channels(current, user, followed))
    # ?message=<id> (a search result, a reply's link): the history around that message.
    target = _id_parameter(request, "message")
    page = history.page(current, user, around=target)
    last_read = None
    if user.is_authenticated:
        # Opening a room reads it, up to what the page shows.
        shown = page["messages"][-1]["id"] if page["has_newer"] else None
        with transaction.atomic():
            last_read = unread.mark_read(current, user, shown)
    counts = unread.counts_for(user)
    listed = sidebar_for(user, counts)
    here = listed.by_pk(current.pk) or entry_for(current, user)
    is_owner = user.is_authenticated and current.owner_id == user.pk
    members, member_total = members_of(current)
    owner = current.owner.get_username() if current.owner is not None else ""
    # The page's own user is here from the start (their heartbeat follows).
    present = _present_with(user, presence.present_users(current))
    found = people_named({*present, *(m["user"] for m in page["messages"])})
    named = [*members, *found.values()]
    return render(
        request,
        "chat/room.html",
        {
            "current": current,
            "here": here,
            "sidebar": listed,
            "history": page,
            "present": [found.get(name) or Person(name, name) for name in present],
            "is_member": here.joined,
            "can_post": access.can_post(user, current),
            "is_owner": is_owner,
            "owner": owner,
            "members": members,
            "member_total": member_total,
            "max_length": MAX_MESSAGE_LENGTH,
            "page_config": {
                "page": "room",
                "room": current.slug,
                "roomId": current.pk,
                "roomName": here.name,
                "roomLabel": here.label,
                "private": current.private,
                "direct": current.direct,
                "owner": owner,
                "user": user.get_username() if user.is_authenticated else "",
                "isOwner": is_owner,
                "isMember": here.joined,
                "memberTotal": member_total,
                "hasMore": page["has_more"],
                "hasNewer": page["has_newer"],
                "target": target,
                "thread": _id_parameter(request, "thread"),
                "heartbeatSeconds": conf.get("CHAT_PRESENCE_HEARTBEAT"),
                "maxLength": MAX_MESSAGE_LENGTH,
                "lastReadId": last_read,
                **_sidebar_config(listed, named),
                "attachments": {
                    "maxFiles": conf.get("CHAT_ATTACHMENTS_PER_MESSAGE"),
                    "maxBytes": conf.get("CHAT_ATTACHMENT_MAX_BYTES"),
                },
                **_unread_config(position, followed, counts),
            },
        },
    )


def _present_with(user: Any, present: list[str]) -> list[str]:
    if not user.is_authenticated:
        return present
    return sorted({*present, user.get_username()})


def _id_parameter(request: HttpRequest, name: str) -> int | None:
    """A message id in the page's query (``?message=``, ``?thread=``); None if absent or
    not an id (the page then opens as usual)."""
    value = request.GET.get(name, "")
    return int(value) if is_id_text(value) and int(value) > 0 else None


@retrying_page
def _membership_action(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    current = readable_room(request, slug)
    if isinstance(current, HttpResponse):
        return current
    if not request.user.is_authenticated:
        return redirect_to_login(f"/rooms/{slug}/")
    try:
        with transaction.atomic():
            limit = "removal" if action == "remove" else "membership"
            ratelimit.check(limit, request, request.user)
            if action == "join":
                rooms.join(current, request.user)
            elif action == "leave":
                rooms.leave(current, request.user)
                if current.private:
                    messages.success(request, f"You left {current.label}.")
                    return redirect("chat:index")
            elif action == "remove":
                removed = rooms.remove(current, request.user, request.POST.get("username", ""))
                messages.success(
                    request, f"{removed.get_username()} was removed from {current.label}."
                )
            else:
                username = request.POST.get("username", "")
                invited = rooms.invite(current, request.user, username)
                messages.success(
                    request, f"{invited.get_username()} may now enter {current.label}."
                )
    except ratelimit.RateLimited as exc:
        return too_many(request, exc)
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


@require_POST
def remove(request: HttpRequest, slug: str) -> HttpResponse:
    """The owner's *Remove* button beside a member of a private room."""
    return _membership_action(request, slug, "remove")
