"""A user's own channel, ``user:<pk>``: only what is that user's, for every page they have open.

- ``read`` ``{"room_id", "room", "up_to"}``: the user read the room up to message ``up_to``
  (on another page, or through the API): every page drops those messages from its count.
- ``invited``: the owner of a private room invited them, or someone started a direct
  conversation with them: the room's sidebar entry (:func:`chat.directory.room_data`:
  ``{"room_id", "room", "name", "topic", "private", "direct"}``, and ``"people"`` for a
  direct conversation) and ``"by"``, who did it. Pages add the room and start counting it.
- ``joined``: the room's entry: they joined a public room (with *Join*, or by posting in
  it), created a room, or started a direct conversation, perhaps on another page.
- ``removed`` ``{"room_id", "room"}``: their membership ended (they left, or the owner
  removed them): pages stop counting that room.
- ``room``: the entry of a private room of theirs whose name, topic or owner changed.
- ``room_gone`` ``{"room_id", "room", "deleted": true}``: a private room of theirs was
  deleted.

A deleted account's channel is purged: its events go, and its name is never reused.

Nothing here is per message: a message is published once, on its room's channel, and
every page counts for itself (:mod:`chat.unread`). Only the user may read this channel.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver

import pgsse
from chat.models import Membership, Room

READ_EVENT = "read"
INVITED_EVENT = "invited"
JOINED_EVENT = "joined"
REMOVED_EVENT = "removed"
ROOM_EVENT = "room"
ROOM_GONE_EVENT = "room_gone"


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


def entry(room: Room) -> dict[str, Any]:
    """A room as the user's sidebar shows it (a direct conversation with its people, whom
    the page names it after)."""
    from chat.directory import room_data
    from chat.profiles import person

    data = room_data(room)
    if room.direct:
        members = room.members.select_related("chat_profile").order_by("pk")
        data["people"] = [person(user).as_data() for user in members]
    return data


def tell_invited(room: Room, user_pk: Any, by: str) -> None:
    tell(user_pk, INVITED_EVENT, {**entry(room), "by": by})


def tell_joined(room: Room, user_pk: Any) -> None:
    tell(user_pk, JOINED_EVENT, entry(room))


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


@receiver(post_save, sender=Room)
def private_room_changed(sender: type[Room], instance: Room, created: bool, **kwargs: Any) -> None:
    """A private room's members see its new name, topic or owner on every page (a public
    room's change goes to everyone, on the directory channel)."""
    if created or not instance.private or not instance.shown_changed():
        return
    data = entry(instance)
    for user_pk in Membership.objects.filter(room=instance).values_list("user_id", flat=True):
        tell(user_pk, ROOM_EVENT, data)


@receiver(pre_delete, sender=Room)
def private_room_deleted(sender: type[Room], instance: Room, **kwargs: Any) -> None:
    """Its members' pages drop it (before its memberships go with it)."""
    if not instance.private:
        return
    data = {"room_id": instance.pk, "room": instance.slug, "deleted": True}
    for user_pk in Membership.objects.filter(room=instance).values_list("user_id", flat=True):
        tell(user_pk, ROOM_GONE_EVENT, data)
