"""Who is in a room: the member list a room page shows, and its changes, live.

A membership that begins or ends is published on the room's channel, so every open page
of the room redraws its member list (and its owner's *Remove* buttons) at once:

- ``member_joined`` ``{"room_id", "user", "name"}``: someone joined (*Join*, an
  invitation, the admin);
- ``member_left`` ``{"room_id", "user"}``: someone left, was removed, or their account
  was deleted.

Joining a public room by posting in it publishes nothing here: the message itself tells
the pages (its author is a member from then on), so a first message stays one event on
the room's channel. A direct conversation's members are fixed when it starts, before
anyone follows it: nothing is published for them either.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

import pgsse
from chat.collation import sort_key
from chat.models import Membership, Room
from chat.profiles import Person, person

MEMBER_JOINED_EVENT = "member_joined"
MEMBER_LEFT_EVENT = "member_left"
#: Members a room page lists (the most a busy public room shows; the count says the rest).
LISTED = 200


def members_of(room: Room, limit: int = LISTED) -> tuple[list[Person], int]:
    """Up to ``limit`` of ``room``'s members, sorted by name, and how many there are."""
    memberships = Membership.objects.filter(room=room)
    total = memberships.count()
    users = [
        membership.user
        for membership in memberships.select_related("user__chat_profile").order_by("joined_at")[
            :limit
        ]
    ]
    people = sorted((person(user) for user in users), key=lambda p: sort_key(p.name))
    return people, total


def quietly(membership: Membership) -> Membership:
    """Mark a membership about to be created as one that publishes no ``member_joined``
    (see the module's doc)."""
    membership._quiet = True  # type: ignore[attr-defined]
    return membership


@receiver(post_save, sender=Membership)
def membership_created(
    sender: type[Membership], instance: Membership, created: bool, **kwargs: Any
) -> None:
    if not created or getattr(instance, "_quiet", False):
        return
    joined = person(instance.user)
    data = {"room_id": instance.room_id, "user": joined.username, "name": joined.name}
    pgsse.publish(Room.channel_of(instance.room_id), MEMBER_JOINED_EVENT, data)


def _going_away(origin: object) -> bool:
    """Whether a deletion started from a room (its channels are purged)."""
    if isinstance(origin, QuerySet):
        return origin.model is Room
    return isinstance(origin, Room)


@receiver(post_delete, sender=Membership)
def membership_deleted(sender: type[Membership], instance: Membership, **kwargs: Any) -> None:
    if _going_away(kwargs.get("origin")):
        return
    # An account being deleted is still there: its memberships go before it.
    username = (
        get_user_model()
        .objects.filter(pk=instance.user_id)
        .values_list("username", flat=True)
        .first()
    )
    if username is not None:
        data = {"room_id": instance.room_id, "user": username}
        pgsse.publish(Room.channel_of(instance.room_id), MEMBER_LEFT_EVENT, data)
