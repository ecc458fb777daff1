"""The chat's HTTP API: JSON in, JSON out, for the page's script, bots and benchmarks.

Authentication: a session (with the CSRF token in ``X-CSRFToken`` for writes) or a
per-user token (``Authorization: Bearer <token>``, see the ``chat_token`` command).
Every error is ``{"error": "<what was wrong and what is accepted>"}`` with its status:
400 invalid, 401 not authenticated, 403 not allowed, 404 no such room or message,
405 method, 413 too long, 429 rate limited (with ``Retry-After``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

import pgsse
from chat import access, conf, presence, ratelimit
from chat.models import MAX_MESSAGE_LENGTH, ApiToken, Membership, Message, Room
from chat.rooms import RoomError, create_room

#: Messages a history page holds by default, and at most.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_TAB_LENGTH = 64


class ApiError(Exception):
    def __init__(self, status: int, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


def error(status: int, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


View = Callable[..., HttpResponse]


def api_view(methods: list[str]) -> Callable[[View], View]:
    """JSON errors for everything, methods checked, CSRF checked only for session writes."""

    def decorate(view: View) -> View:
        @csrf_exempt
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = error(405, f"Use {' or '.join(methods)} here.")
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return error(exc.status, str(exc), **exc.headers)

        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        return wrapped

    return decorate


def _reject_csrf(request: HttpRequest, reason: str) -> HttpResponse:
    raise ApiError(
        403, f"CSRF check failed ({reason}): send the csrftoken cookie's value in X-CSRFToken."
    )


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        return _reject_csrf(request, reason)


def authenticate(request: HttpRequest) -> User:
    """The user making a write: by bearer token, or by session with a valid CSRF token."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Use 'Authorization: Bearer <token>'.", WWW_Authenticate="Bearer")
        user = ApiToken.user_for(token.strip())
        if user is None:
            raise ApiError(401, "This token is not valid.", WWW_Authenticate="Bearer")
        assert isinstance(user, User)
        return user
    if not request.user.is_authenticated:
        raise ApiError(
            401, "Log in, or send 'Authorization: Bearer <token>'.", WWW_Authenticate="Bearer"
        )
    check = _CsrfCheck(lambda request: HttpResponse())
    check.process_request(request)
    check.process_view(request, lambda request: HttpResponse(), (), {})
    assert isinstance(request.user, User)
    return request.user


def reader(request: HttpRequest) -> Any:
    """The user of a read: the bearer token's, or the session's (maybe anonymous)."""
    if "Authorization" in request.headers:
        return authenticate(request)
    return request.user


def body(request: HttpRequest) -> dict[str, Any]:
    """A JSON object body, or form fields (the page's forms and beacons send those)."""
    try:
        if request.content_type == "application/json":
            try:
                data = json.loads(request.body or b"null")
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ApiError(400, f"The body is not valid JSON: {exc}.") from exc
            if not isinstance(data, dict):
                raise ApiError(400, "Send a JSON object.")
            return data
        return request.POST.dict()
    except RequestDataTooBig as exc:
        raise ApiError(
            413, f"The body is too large; a message is at most {MAX_MESSAGE_LENGTH} characters."
        ) from exc


def find_room(user: Any, slug: str) -> Room:
    room = Room.objects.filter(slug=slug).first()
    if room is None:
        raise ApiError(404, f"There is no room {slug!r}.")
    if not access.can_read(user, room):
        if not user.is_authenticated:
            raise ApiError(401, "Log in to read this room.", WWW_Authenticate="Bearer")
        raise ApiError(403, "This room is private: only its members may read it.")
    return room


def valid_text(data: dict[str, Any]) -> str:
    text = data.get("text")
    if not isinstance(text, str):
        raise ApiError(400, 'Send the message as {"text": "..."}.')
    if not text.strip():
        raise ApiError(400, "A message cannot be empty.")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise ApiError(
            413, f"A message is at most {MAX_MESSAGE_LENGTH} characters; this one is {len(text)}."
        )
    return text


def _limit(key: str, setting: str, what: str) -> None:
    limit, period = conf.get(setting)
    wait = ratelimit.hit(key, limit, period)
    if wait is not None:
        raise ApiError(
            429,
            f"Too many {what}: at most {limit} every {period:g} seconds. "
            f"Try again in {math.ceil(wait)} s.",
            Retry_After=str(max(1, math.ceil(wait))),
        )


@api_view(["GET", "POST"])
def messages(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: a page of history (``?before=<id>``, ``?limit=``); POST: post ``{"text"}``."""
    if request.method == "GET":
        return _history(request, slug)
    user = authenticate(request)
    room = find_room(user, slug)
    if not access.can_post(user, room):
        raise ApiError(403, "Only members may post in this private room.")
    text = valid_text(body(request))
    with transaction.atomic():
        _limit(f"post:{user.pk}", "CHAT_RATE_LIMIT", "messages")
        Membership.objects.get_or_create(room=room, user_id=user.pk)
        message = Message.objects.create(
            room=room, author=user, author_name=user.get_username(), text=text
        )
    return JsonResponse(message.as_event_data(room.slug), status=201)


def _history(request: HttpRequest, slug: str) -> HttpResponse:
    room = find_room(reader(request), slug)
    try:
        limit = int(request.GET.get("limit", PAGE_SIZE))
        before = int(request.GET["before"]) if "before" in request.GET else None
    except ValueError as exc:
        raise ApiError(400, "'before' and 'limit' must be integers.") from exc
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ApiError(400, f"'limit' must be between 1 and {MAX_PAGE_SIZE}.")
    return JsonResponse(history_page(room, before, limit))


def history_page(room: Room, before: int | None, limit: int = PAGE_SIZE) -> dict[str, Any]:
    """Up to ``limit`` messages older than id ``before`` (the newest if None), oldest first.

    Paginated by id, not offset: messages posted meanwhile do not shift the pages.
    """
    query = room.messages.order_by("-id")
    if before is not None:
        query = query.filter(id__lt=before)
    page = list(query[: limit + 1])
    return {
        "messages": [m.as_event_data(room.slug) for m in reversed(page[:limit])],
        "has_more": len(page) > limit,
    }


@api_view(["PATCH", "DELETE"])
def message(request: HttpRequest, slug: str, message_id: int) -> HttpResponse:
    """PATCH ``{"text"}``: the author edits; DELETE: the author or the room's owner."""
    user = authenticate(request)
    room = find_room(user, slug)
    with transaction.atomic():
        found = Message.objects.select_for_update().filter(room=room, id=message_id).first()
        if found is None:
            raise ApiError(404, f"There is no message {message_id} in this room.")
        if request.method == "DELETE":
            if not access.can_delete(user, found, room):
                raise ApiError(403, "Only its author or the room's owner may delete a message.")
            found.delete()
            return HttpResponse(status=204)
        if not access.can_edit(user, found):
            raise ApiError(403, "Only its author may edit a message.")
        found.text = valid_text(body(request))
        found.edited_at = timezone.now()
        found.save(update_fields=["text", "edited_at"])
    return JsonResponse(found.as_event_data(room.slug))


@api_view(["POST"])
def rooms(request: HttpRequest) -> HttpResponse:
    """Create a room from ``{"name": ..., "private": false}``; the creator owns and joins it."""
    user = authenticate(request)
    data = body(request)
    private = data.get("private", False)
    if not isinstance(private, bool):
        raise ApiError(400, "'private' must be true or false.")
    try:
        room = create_room(user, data.get("name"), private)
    except RoomError as exc:
        raise ApiError(400, str(exc)) from exc
    data = {"slug": room.slug, "name": room.name, "private": room.private}
    return JsonResponse({**data, "url": f"/rooms/{room.slug}/"}, status=201)


def _tab(data: dict[str, Any]) -> str:
    tab = data.get("tab")
    if not isinstance(tab, str) or not 1 <= len(tab) <= MAX_TAB_LENGTH:
        raise ApiError(400, f"Send the page's 'tab' id (1 to {MAX_TAB_LENGTH} characters).")
    return tab


@api_view(["POST"])
def heartbeat(request: HttpRequest, slug: str) -> HttpResponse:
    """An open page says it is still here (``{"tab"}``; ``"leave": true`` when it goes)."""
    data = body(request)
    if not request.user.is_authenticated:
        # An anonymous reader counts nobody, but helps notice tabs that went away.
        presence.update(find_room(request.user, slug), None, "")
        return HttpResponse(status=204)
    user = authenticate(request)
    room = find_room(user, slug)
    leaving = data.get("leave") in (True, "1", "true")
    presence.update(room, user, _tab(data), leaving=leaving)
    return HttpResponse(status=204)


@api_view(["POST"])
def typing(request: HttpRequest, slug: str) -> HttpResponse:
    """Tell the room that the user is typing (rate limited; never stored as a message)."""
    user = authenticate(request)
    room = find_room(user, slug)
    if not access.can_post(user, room):
        raise ApiError(403, "Only members may type in this private room.")
    with transaction.atomic():
        _limit(f"typing:{user.pk}:{room.pk}", "CHAT_TYPING_RATE_LIMIT", "typing notices")
        pgsse.publish(room.typing_channel, "typing", {"user": user.get_username()})
    return HttpResponse(status=204)
