"""A notice board: notes rendered to HTML by Django and swapped in by htmx's sse extension.

The recipe of docs/htmx.md, step by step:

1. ``post_note`` renders the note's fragment with ``render_to_string`` (autoescaped: HTML
   in what a user typed arrives as text) and publishes the fragment as the event's data.
   pgsse sends every event's data as JSON, so the fragment travels as a JSON string.
2. ``board`` renders the page with the stream's page-load position, so a note published
   between this render and the stream's start is replayed, not lost.
3. ``board_events`` is the stream. The board is public, so its ``authorize`` hook lets
   everyone read; pgsse's default lets only logged-in users in.
4. The board lets anyone post: it is served only when ``CHAT_HTMX_RECIPE`` is on (off by
   default, and under ``make run``), and notes are rate limited per client address.
5. In the page, ``sse-swap="note"`` swaps each ``note`` event in, after the small htmx
   extension ``pgsse-html`` (static/htmx_recipe/pgsse-html.js) has decoded the JSON string.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

import pgsse
from chat import conf, ratelimit
from pgsse.views import StreamView

#: The one channel of the board, and the event type its ``sse-swap`` listens to.
CHANNEL = "htmx:board"
NOTE_EVENT = "note"
MAX_AUTHOR_LENGTH = 40
MAX_TEXT_LENGTH = 500


def _require_enabled() -> None:
    if not conf.get("CHAT_HTMX_RECIPE"):
        raise Http404("The htmx recipe is not served here (CHAT_HTMX_RECIPE is off).")


def served_when_enabled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _require_enabled()
        return view(request, *args, **kwargs)

    return wrapped


@served_when_enabled
@require_GET
def board(request: HttpRequest) -> HttpResponse:
    context = {"position": pgsse.current_position([CHANNEL]), "note_event": NOTE_EVENT}
    return render(request, "htmx_recipe/board.html", context)


@served_when_enabled
@require_POST
def post_note(request: HttpRequest) -> HttpResponse:
    author = request.POST.get("author", "").strip()
    text = request.POST.get("text", "").strip()
    if not author or not text or len(author) > MAX_AUTHOR_LENGTH or len(text) > MAX_TEXT_LENGTH:
        return HttpResponse(
            f"A note needs an author (at most {MAX_AUTHOR_LENGTH} characters) and a text "
            f"(at most {MAX_TEXT_LENGTH} characters).\n",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    # Autoescaped like any template: the fragment is safe HTML whatever the user typed.
    fragment = render_to_string("htmx_recipe/note.html", {"author": author, "text": text})
    try:
        with transaction.atomic():
            ratelimit.check("note", request)
            pgsse.publish(CHANNEL, NOTE_EVENT, fragment)
    except ratelimit.RateLimited as exc:
        return HttpResponse(
            f"{exc}\n",
            status=429,
            content_type="text/plain; charset=utf-8",
            headers={"Retry-After": str(exc.retry_after)},
        )
    return HttpResponse(status=204)


def _board_channels(request: HttpRequest) -> list[str]:
    _require_enabled()
    return [CHANNEL]


def _anyone_may_read(request: HttpRequest, channel: str) -> bool:
    # The board is public. In your project keep pgsse's default (logged-in users only) or
    # check the user's right to this channel here.
    return True


board_events = StreamView.as_view(channels=_board_channels, authorize=_anyone_may_read)
