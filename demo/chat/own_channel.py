"""A user's own channel, ``user:<pk>``: only what is that user's, for every page they have open.

- ``read`` ``{"room_id", "room", "up_to"}``: the user read the room up to message ``up_to``
  (on another page, or through the API): every page drops those messages from its count.
- ``invited`` ``{"room_id", "room", "name", "by"}``: the owner of a private room invited them.
- ``removed`` ``{"room_id", "room"}``: their membership ended (they left, or the owner
  removed them): pages stop counting that room.

A deleted account's channel is purged: its events go, and its name is never reused.

Nothing here is per message: a message is published once, on its room's channel, and
every page counts for itself (:mod:`chat.unread`). Only the user may read this channel.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.db.models.signals import post_delete
from django.dispatch import receiver

import pgsse
from chat.models import Membership, Room

READ_EVENT = "read"
INVITED_EVENT = "invited"
REMOVED_EVENT = "removed"


def user_channel(user_pk: Any) -> str:
    """A user's own channel."""
    return f"user:{user_pk}"


def channel_owner(channel: str) -> str | None:
    """The user pk a ``user:<pk>`` channel belongs to, or None for other channels."""
    prefix, _, pk = channel.partition(":")
    return pk if prefix == "user" else None


def tell(user_pk: Any, event: str, data: dict[str, Any]) -> None:
    """Publish ``event`` on the user's own channel, in the caller's transaction."""
    pgsse.publish(user_channel(user_pk), event, data)


def tell_invited(room: Room, user_pk: Any, by: str) -> None:
    data = {"room_id": room.pk, "room": room.slug, "name": room.name, "by": by}
    tell(user_pk, INVITED_EVENT, data)


def _going_away(origin: object) -> bool:
    """Whether a deletion started from a room or a user: nobody is left to tell (a room's
    channels are purged, the user's pages end)."""
    models = (Room, get_user_model())
    if isinstance(origin, QuerySet):
        return issubclass(origin.model, models)
    return isinstance(origin, models)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def account_deleted(sender: type[Any], instance: Any, **kwargs: Any) -> None:
    """Nobody may read a deleted user's channel again: what it said goes too (the names of
    the private rooms they were invited to)."""
    pgsse.purge_channel(user_channel(instance.pk))


@receiver(post_delete, sender=Membership)
def membership_ended(sender: type[Membership], instance: Membership, **kwargs: Any) -> None:
    if _going_away(kwargs.get("origin")):
        return
    room = Room.objects.filter(pk=instance.room_id).only("slug").first()
    if room is not None:
        tell(instance.user_id, REMOVED_EVENT, {"room_id": room.pk, "room": room.slug})
