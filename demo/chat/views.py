"""The chat's pages and endpoints. Uses only pgsse's public API."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

import pgsse
from chat.models import MAX_MESSAGE_LENGTH, Message, Room
from pgsse.views import StreamView

HISTORY_LENGTH = 50
MAX_NAME_LENGTH = 40


def index(request: HttpRequest) -> HttpResponse:
    return redirect("chat:room", slug="lobby")


@require_GET
def room(request: HttpRequest, slug: str) -> HttpResponse:
    current = get_object_or_404(Room, slug=slug)
    # Position first, history second: whatever commits in between is replayed by the
    # stream (and recognised by its message id), never lost.
    position = pgsse.current_position([current.channel])
    history = list(current.messages.order_by("-id")[:HISTORY_LENGTH])[::-1]
    return render(
        request,
        "chat/room.html",
        {
            "room": current,
            "rooms": Room.objects.all(),
            "history": history,
            "position": position,
            "display_name": request.session.get("display_name", ""),
            "max_length": MAX_MESSAGE_LENGTH,
        },
    )


@require_POST
def set_name(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("name", "").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        return HttpResponse(
            f"A name of 1 to {MAX_NAME_LENGTH} characters is required.\n",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    request.session["display_name"] = name
    next_url = request.POST.get("next", "")
    return redirect(next_url if next_url.startswith("/rooms/") else reverse("chat:index"))


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@require_POST
def post_message(request: HttpRequest, slug: str) -> HttpResponse:
    current = get_object_or_404(Room, slug=slug)
    author = request.session.get("display_name")
    if not author:
        return _error("Choose a display name first.", 403)
    text = request.POST.get("text", "")
    if not text.strip():
        return _error("A message cannot be empty.", 400)
    if len(text) > MAX_MESSAGE_LENGTH:
        return _error(f"A message is at most {MAX_MESSAGE_LENGTH} characters.", 413)
    with transaction.atomic():
        message = Message.objects.create(room=current, author_name=author, text=text)
        data = message.as_event_data()
        pgsse.publish(current.channel, "message_created", data)
    return JsonResponse(data, status=201)


def _room_channels(request: HttpRequest) -> list[str]:
    assert request.resolver_match is not None
    return [get_object_or_404(Room, slug=request.resolver_match.kwargs["slug"]).channel]


def _public_room(request: HttpRequest, channel: str) -> bool:
    return True  # every room is public until accounts and private rooms exist


room_events = StreamView.as_view(channels=_room_channels, authorize=_public_room)
