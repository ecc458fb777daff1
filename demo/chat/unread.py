"""Unread counts and mentions: kept per membership, counted where they are read.

Each membership keeps the newest message id its user has read (``last_read_id``); the
messages after it, by others, are unread, and those ``@mentioning`` the user, or replying
to one of their messages (:mod:`chat.threads`), are counted apart. Nothing is published
per member when a message is posted (a message is one event on its room's channel,
whatever the room's size): a page gets its counts with the page
(:func:`counts_for`, read after the page's stream position), then counts for itself from
the events of the rooms it follows (``chat.js``) and from ``read`` events on the user's own
channel (:func:`mark_read`, :mod:`chat.own_channel`), which every other page of that user
follows.

To count exactly, a page knows *which* messages are unread, not only how many: the ids of
the newest ``WINDOW`` unread messages of each room (and of those mentioning the user).
An event replayed for a message the page already counted is recognised by its id; a
deletion or a read position removes exactly the ids it covers. Rooms with more unread
messages than that carry the rest as a plain number (``unread`` minus the window).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import connection
from django.db.models import F, Max, OuterRef, Subquery

from chat import own_channel
from chat.models import Membership, Message, Room

#: Unread message ids a page is given per room (and mentions apart).
WINDOW = 100


@dataclass
class RoomCount:
    """One membership's unread messages, as a page receives it."""

    room_id: int
    room: str
    #: The newest message id read.
    read: int
    unread: int
    mentions: int
    #: The newest unread ids (at most ``WINDOW``), ascending; and those mentioning the user.
    ids: list[int] = field(default_factory=list)
    mentioning: list[int] = field(default_factory=list)

    def as_page_data(self) -> dict[str, Any]:
        return asdict(self)


# One fixed statement, every filter a parameter. The tables are the chat's own (its
# models keep Django's default names) and django.contrib.auth's users. Each lateral part
# walks the (room, id) index from the member's read position.
_COUNTS_SQL = """
    SELECT mb.room_id, r.slug, mb.last_read_id, c.unread, c.mentions,
           coalesce(w.ids, '{}'), coalesce(wm.ids, '{}')
    FROM chat_membership mb
    JOIN chat_room r ON r.id = mb.room_id
    JOIN auth_user u ON u.id = mb.user_id
    CROSS JOIN LATERAL (
        SELECT count(*) AS unread,
               count(*) FILTER (WHERE u.username = ANY(m.mentions) OR EXISTS (
                   SELECT 1 FROM chat_message p
                   WHERE p.id = m.reply_to_id AND p.author_id = mb.user_id
               )) AS mentions
        FROM chat_message m
        WHERE m.room_id = mb.room_id AND m.id > mb.last_read_id
          AND m.author_id IS DISTINCT FROM mb.user_id
    ) c
    CROSS JOIN LATERAL (
        SELECT array_agg(x.id ORDER BY x.id) AS ids FROM (
            SELECT m.id FROM chat_message m
            WHERE m.room_id = mb.room_id AND m.id > mb.last_read_id
              AND m.author_id IS DISTINCT FROM mb.user_id
            ORDER BY m.id DESC LIMIT %(window)s
        ) x
    ) w
    CROSS JOIN LATERAL (
        SELECT array_agg(x.id ORDER BY x.id) AS ids FROM (
            SELECT m.id FROM chat_message m
            WHERE m.room_id = mb.room_id AND m.id > mb.last_read_id
              AND m.author_id IS DISTINCT FROM mb.user_id
              AND (u.username = ANY(m.mentions) OR EXISTS (
                  SELECT 1 FROM chat_message p
                  WHERE p.id = m.reply_to_id AND p.author_id = mb.user_id
              ))
            ORDER BY m.id DESC LIMIT %(window)s
        ) x
    ) wm
    WHERE mb.user_id = %(user)s
      AND (%(rooms)s::bigint[] IS NULL OR mb.room_id = ANY(%(rooms)s::bigint[]))
"""


def counts_for(user: Any, rooms: list[int] | None = None) -> dict[int, RoomCount]:
    """Every membership's count of ``user`` (only of the rooms with these pks, if given),
    by room pk. Read it *after* the position of the stream that will follow the rooms:
    what commits in between is both counted and replayed, and recognised by its id."""
    if not user.is_authenticated:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_COUNTS_SQL, {"user": user.pk, "rooms": rooms, "window": WINDOW})
        rows = cursor.fetchall()
    return {
        row[0]: RoomCount(row[0], row[1], row[2], row[3], row[4], list(row[5]), list(row[6]))
        for row in rows
    }


def most_active(user: Any, limit: int, exclude: int | None = None) -> list[int]:
    """The pks of ``user``'s ``limit`` rooms with the newest messages (``exclude`` left
    out): those a page follows live."""
    if not user.is_authenticated or limit <= 0:
        return []
    newest = Subquery(
        Message.objects.filter(room_id=OuterRef("room_id")).order_by("-id").values("id")[:1]
    )
    memberships = Membership.objects.filter(user_id=user.pk)
    if exclude is not None:
        memberships = memberships.exclude(room_id=exclude)
    memberships = memberships.annotate(newest=newest).order_by(
        F("newest").desc(nulls_last=True), "-room_id"
    )
    return list(memberships.values_list("room_id", flat=True)[:limit])


def newest_id(room: Room) -> int:
    newest: int | None = room.messages.aggregate(newest=Max("id"))["newest"]
    return newest or 0


def mark_read(room: Room, user: Any, up_to: int | None = None) -> int | None:
    """Move ``user``'s read position in ``room`` to message ``up_to`` (the newest if None),
    never backwards, and tell the user's pages if that changes their count. Returns the
    position before, or None if ``user`` is not a member. Call it in a transaction."""
    membership = Membership.objects.select_for_update().filter(room=room, user_id=user.pk).first()
    if membership is None:
        return None
    newest = newest_id(room)
    target = newest if up_to is None else min(up_to, newest)
    before = membership.last_read_id
    if target > before:
        membership.last_read_id = target
        membership.save(update_fields=["last_read_id"])
        # Tell the pages only if their count changes: one's own messages are never unread.
        skipped = room.messages.filter(id__gt=before, id__lte=target).exclude(author_id=user.pk)
        if skipped.exists():
            own_channel.tell(
                user.pk,
                own_channel.READ_EVENT,
                {"room_id": room.pk, "room": room.slug, "up_to": target},
            )
    return before
