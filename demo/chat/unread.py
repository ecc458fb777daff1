"""Unread messages per room and member, sent live on each user's own channel.

Each membership keeps the newest message id its user has read (``last_read_id``); the
messages after it, by others, are unread, and those ``@mentioning`` the user are counted
apart. Every change of a count is published on ``user:<pk>`` as an ``unread`` event
carrying the room's whole count, ``{"room", "unread", "mentions"}``: every open page of
that user (room list, rooms) follows it, and only that user may read that channel.

A new message costs one publish per member of its room: right for rooms of tens or
hundreds of members, not for rooms of many thousands.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.db.models import Max

import pgsse
from chat.models import Membership, Message, Room

UNREAD_EVENT = "unread"


def user_channel(user_pk: Any) -> str:
    """A user's own channel: unread counts for every page that user has open."""
    return f"user:{user_pk}"


def channel_owner(channel: str) -> str | None:
    """The user pk a ``user:<pk>`` channel belongs to, or None for other channels."""
    prefix, _, pk = channel.partition(":")
    return pk if prefix == "user" else None


# One fixed statement, every filter a parameter (None: not filtered). The tables are the
# chat's own (its models keep Django's default names) and django.contrib.auth's users.
_COUNTS_SQL = """
    SELECT mb.user_id, r.slug,
           count(m.id),
           count(m.id) FILTER (WHERE u.username = ANY(m.mentions))
    FROM chat_membership mb
    JOIN chat_room r ON r.id = mb.room_id
    JOIN auth_user u ON u.id = mb.user_id
    LEFT JOIN chat_message m
           ON m.room_id = mb.room_id AND m.id > mb.last_read_id
          AND m.author_id IS DISTINCT FROM mb.user_id
    WHERE (%(user)s::bigint IS NULL OR mb.user_id = %(user)s::bigint)
      AND (%(room)s::bigint IS NULL OR mb.room_id = %(room)s::bigint)
      AND (%(users)s::bigint[] IS NULL OR mb.user_id = ANY(%(users)s::bigint[]))
    GROUP BY mb.user_id, r.slug
"""


def _counts(
    user: Any = None, room: Any = None, users: list[Any] | None = None
) -> list[tuple[Any, str, int, int]]:
    """``(user_id, slug, unread, mentions)`` of the memberships of ``user``, of ``room``,
    and among ``users`` (each filter only if given)."""
    with connection.cursor() as cursor:
        cursor.execute(_COUNTS_SQL, {"user": user, "room": room, "users": users})
        return list(cursor.fetchall())


def counts_for(user: Any) -> dict[str, dict[str, int]]:
    """``{slug: {"unread", "mentions"}}`` for every room ``user`` is a member of."""
    if not user.is_authenticated:
        return {}
    rows = _counts(user=user.pk)
    return {slug: {"unread": unread, "mentions": mentions} for _, slug, unread, mentions in rows}


def publish_counts(room: Room, user_pks: Iterable[Any] | None = None) -> None:
    """Publish ``room``'s count to its members (only those in ``user_pks`` if given), in
    the caller's transaction: delivered if and only if the change commits."""
    if user_pks is None:
        rows = _counts(room=room.pk)
    else:
        rows = _counts(room=room.pk, users=list(user_pks))
    for user_id, slug, unread, mentions in rows:
        pgsse.publish(
            user_channel(user_id),
            UNREAD_EVENT,
            {"room": slug, "unread": unread, "mentions": mentions},
        )


def newest_id(room: Room) -> int:
    newest: int | None = room.messages.aggregate(newest=Max("id"))["newest"]
    return newest or 0


def mark_read(room: Room, user: Any, up_to: int | None = None) -> int | None:
    """Move ``user``'s read position in ``room`` to message ``up_to`` (the newest if None),
    never backwards, and publish the new count if it moved. Returns the position before,
    or None if ``user`` is not a member. Call it in a transaction."""
    membership = Membership.objects.select_for_update().filter(room=room, user_id=user.pk).first()
    if membership is None:
        return None
    newest = newest_id(room)
    target = newest if up_to is None else min(up_to, newest)
    before = membership.last_read_id
    if target > before:
        membership.last_read_id = target
        membership.save(update_fields=["last_read_id"])
        # Publish only if the count changes: one's own messages are never unread.
        skipped = room.messages.filter(id__gt=before, id__lte=target).exclude(author_id=user.pk)
        if skipped.exists():
            publish_counts(room, [user.pk])
    return before


def affected_by(message: Message) -> list[Any]:
    """Members whose count a new or deleted ``message`` changes: those who had not read up
    to it, but for its author."""
    members = Membership.objects.filter(room_id=message.room_id, last_read_id__lt=message.id)
    if message.author_id is not None:
        members = members.exclude(user_id=message.author_id)
    return list(members.values_list("user_id", flat=True))
