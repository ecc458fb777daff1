"""Pages of a room's history, by message id (never by offset: messages posted meanwhile do
not shift the pages): the newest, those before or after a message, and those around one
(where a search result or a reply's link leads).

Every page is oldest first and says whether older messages remain (``has_more``) and
whether newer ones do (``has_newer``: a page around an old message is not the newest).
"""

from __future__ import annotations

from typing import Any

from chat import message_data
from chat.models import Room

#: Messages a page holds by default, and at most.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


def page(
    room: Room,
    user: Any = None,
    *,
    before: int | None = None,
    after: int | None = None,
    around: int | None = None,
    limit: int = PAGE_SIZE,
) -> dict[str, Any]:
    """Up to ``limit`` messages: older than ``before``, newer than ``after``, around
    ``around`` (half before it, it and the rest after), or the newest."""
    # With the authors' display names (chat.profiles), in the same query.
    messages = room.messages.select_related("author__chat_profile")
    if around is not None:
        half = limit // 2
        older = list(messages.filter(id__lt=around).order_by("-id")[: half + 1])
        newer = list(messages.filter(id__gte=around).order_by("id")[: limit - half + 1])
        shown = [*reversed(older[:half]), *newer[: limit - half]]
        has_more, has_newer = len(older) > half, len(newer) > limit - half
    elif after is not None:
        newer = list(messages.filter(id__gt=after).order_by("id")[: limit + 1])
        shown = newer[:limit]
        has_more, has_newer = messages.filter(id__lte=after).exists(), len(newer) > limit
    else:
        query = messages.order_by("-id")
        if before is not None:
            query = query.filter(id__lt=before)
        older = list(query[: limit + 1])
        shown = list(reversed(older[:limit]))
        has_more = len(older) > limit
        has_newer = before is not None and messages.filter(id__gte=before).exists()
    return {
        "messages": message_data.describe(shown, room.slug, user),
        "has_more": has_more,
        "has_newer": has_newer,
    }
