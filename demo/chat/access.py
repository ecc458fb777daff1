"""Who may read and write what: the one place the chat's permission rules live."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
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
