"""Who may read and write what: the one place the chat's permission rules live."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connections, router
from django.db.models import Q, QuerySet

from chat import conf
from chat.models import Membership, Message, Room

User = AbstractBaseUser | AnonymousUser


def is_member(user: User, room: Room) -> bool:
    return bool(
        user.is_authenticated and Membership.objects.filter(room=room, user_id=user.pk).exists()
    )


def can_read(user: User, room: Room) -> bool:
    """Pages, history and streams: members of private rooms; anyone logged in for public
    rooms, and anonymous visitors too when ``CHAT_ANONYMOUS_READ`` is on."""
    if room.private:
        return is_member(user, room)
    return bool(user.is_authenticated or conf.get("CHAT_ANONYMOUS_READ"))


#: The room of a slug, and whether a user (%s: their pk, NULL for nobody) is a member of
#: it: one statement for a stream open, which would otherwise build two ORM queries.
_ROOM_AND_MEMBERSHIP = (
    "SELECT r.id, r.slug, r.name, r.created_at, r.private, r.owner_id,"
    " EXISTS (SELECT 1 FROM chat_membership m WHERE m.room_id = r.id AND m.user_id = %s)"
    " FROM chat_room r WHERE r.slug = %s"
)
_ROOM_FIELDS = ("id", "slug", "name", "created_at", "private", "owner_id")


def readable_room(user: User, slug: str) -> Room | None:
    """The room ``slug`` if ``user`` may read it (as :func:`can_read` says), else None."""
    alias = router.db_for_read(Room)
    with connections[alias].cursor() as cursor:
        cursor.execute(_ROOM_AND_MEMBERSHIP, [user.pk, slug])
        row = cursor.fetchone()
    if row is None:
        return None
    room = Room.from_db(alias, _ROOM_FIELDS, row[:-1])
    if room.private:
        return room if user.is_authenticated and row[-1] else None
    return room if can_read(user, room) else None


def can_post(user: User, room: Room) -> bool:
    """Logged-in users in public rooms (posting joins them), members in private rooms."""
    if not user.is_authenticated:
        return False
    return is_member(user, room) if room.private else True


def can_edit(user: User, message: Message) -> bool:
    return bool(user.is_authenticated and message.author_id == user.pk)


def can_delete(user: User, message: Message, room: Room) -> bool:
    """Authors delete their own messages; a room's owner deletes any message in it."""
    return can_edit(user, message) or bool(user.is_authenticated and room.owner_id == user.pk)


def visible_rooms(user: User) -> QuerySet[Room]:
    """Public rooms, and the private rooms ``user`` belongs to."""
    if not user.is_authenticated:
        return Room.objects.filter(private=False)
    return Room.objects.filter(Q(private=False) | Q(membership__user_id=user.pk)).distinct()
