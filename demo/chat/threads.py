"""Replies and threads.

A reply answers one message of its room (``reply_to``) and belongs to the thread of that
message's first message (``thread``: a reply to a reply joins the same thread, one level,
as in Slack). Replies stay in the room's timeline, where they count as unread like any
message, show what they answer, and a reply to your message counts as a mention of you
(:mod:`chat.unread`). The thread view lists a thread's first message and its replies.

A thread's reply count travels with the events of its replies: every change to a reply
(created, edited, deleted) locks the thread's first message's row and counts, in the
transaction of the change, so the counts on the room's channel follow commit order and a
page sets what the newest event says. The lock is always taken after the reply's own row
(a reply is inserted, updated or deleted first): never the other way round, so no two
changes wait for each other.

Nothing is constrained in the database: a reply outlives the message it answers (it
says that message was deleted), and a thread outlives its first message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Max

from chat.errors import ApiError
from chat.models import Message, Room

#: Characters of the answered message's text that a reply shows (in answers, never in
#: the log: the log must not keep a text its author may edit or delete).
EXCERPT_LENGTH = 200


@dataclass(frozen=True)
class Target:
    """What a new reply answers, and the thread it joins."""

    reply_to: Message
    thread_id: int


def target(room: Room, reply_to: int) -> Target:
    """The message ``reply_to`` of ``room`` a new message answers (404 if there is none)."""
    found = Message.objects.filter(room=room, id=reply_to).only("id", "thread_id").first()
    if found is None:
        raise ApiError(404, f"There is no message {reply_to} in this room to reply to.")
    return Target(found, found.thread_id or found.id)


def lock(thread_id: int) -> None:
    """Wait for the other changes of this thread to commit (see the module's docstring)."""
    list(Message.objects.select_for_update().filter(id=thread_id).values_list("id"))


def summaries(thread_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """``{"id", "replies", "last_reply_at"}`` of each thread that has replies, by its id."""
    ids = set(thread_ids)
    if not ids:
        return {}
    rows = (
        Message.objects.filter(thread_id__in=ids)
        .values("thread_id")
        .annotate(count=Count("id"), last=Max("created_at"))
    )
    return {
        row["thread_id"]: {
            "id": row["thread_id"],
            "replies": row["count"],
            "last_reply_at": row["last"].isoformat(),
        }
        for row in rows
    }


def summary(thread_id: int) -> dict[str, Any]:
    """One thread's summary (no replies: a count of 0)."""
    found = summaries([thread_id]).get(thread_id)
    return found or {"id": thread_id, "replies": 0, "last_reply_at": None}


def excerpt(text: str, attachments: list[dict[str, Any]] | None = None) -> str:
    """The text, shortened; a message that is its files alone is told by their names."""
    if not text and attachments:
        text = "📎 " + ", ".join(str(file.get("name", "")) for file in attachments)
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_LENGTH else text[: EXCERPT_LENGTH - 1] + "…"


def answered(messages: Iterable[Message]) -> dict[int, dict[str, Any]]:
    """What each reply among ``messages`` answers, by the answered message's id:
    ``{"id", "user", "excerpt"}`` (gone messages are absent)."""
    ids = {m.reply_to_id for m in messages if m.reply_to_id is not None}
    if not ids:
        return {}
    rows = Message.objects.filter(id__in=ids).values_list(
        "id", "author_name", "text", "attachments"
    )
    return {
        pk: {"id": pk, "user": user, "excerpt": excerpt(text, files)}
        for pk, user, text, files in rows
    }


def thread_page(
    room: Room, thread_id: int, before: int | None, limit: int
) -> tuple[Message | None, list[Message], bool]:
    """A thread's first message (None if deleted), its ``limit`` newest replies older than
    ``before`` (oldest first), and whether older replies remain. 404 when there is no
    such thread in ``room``."""
    root = Message.objects.filter(room=room, id=thread_id).first()
    if root is not None and root.thread_id is not None:
        raise ApiError(404, f"Message {thread_id} is a reply: its thread is {root.thread_id}.")
    query = Message.objects.filter(room=room, thread_id=thread_id).order_by("-id")
    if before is not None:
        query = query.filter(id__lt=before)
    page = list(query[: limit + 1])
    if root is None and not page and before is None:
        raise ApiError(404, f"There is no thread {thread_id} in this room.")
    return root, list(reversed(page[:limit])), len(page) > limit
