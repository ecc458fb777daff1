"""The directory channel: what everyone may know, for every page's sidebar, live.

One channel, ``directory``, followed by every page (the room list and room pages alike):

- ``room`` ``{"room_id", "room", "name", "topic", "private": false, "direct": false,
  "owner"}``: a public room was created, renamed, its topic changed, or its owner;
- ``room_gone`` ``{"room_id", "room", "deleted"}``: a public room was deleted
  (``deleted`` true), or made private (false: its members keep it);
- ``person`` ``{"user", "name"}``: someone set their display name.

Why one shared channel and not each user's own: a new public room, or a new display name,
concerns everyone, and publishing it to every user's channel would cost one event per
account. Here it is one event, whoever and however many read it. What concerns some
people only (an invitation, a private room renamed, a new direct conversation) goes to
their own channels (:mod:`chat.own_channel`).

Every path is covered, the pages, the API and the admin: rooms are told by model signals,
in the saving transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

import pgsse
from chat.models import Room

if TYPE_CHECKING:
    from chat.profiles import Person

CHANNEL = "directory"
ROOM_EVENT = "room"
ROOM_GONE_EVENT = "room_gone"
PERSON_EVENT = "person"


def room_data(room: Room) -> dict[str, Any]:
    """What pages show of a room: in their sidebars, and a room's own page in its heading
    (a direct conversation is named after its people, as each reader sees them:
    :func:`chat.own_channel.entry`)."""
    owner = room.owner if room.owner_id is not None else None
    return {
        "room_id": room.pk,
        "room": room.slug,
        "name": room.name,
        "topic": room.topic,
        "private": room.private,
        "direct": room.direct,
        "owner": owner.get_username() if owner is not None else None,
    }


def tell_person(person: Person) -> None:
    pgsse.publish(CHANNEL, PERSON_EVENT, person.as_data())


@receiver(post_save, sender=Room)
def room_saved(sender: type[Room], instance: Room, created: bool, **kwargs: Any) -> None:
    # Room.save() updates what it stored only after this signal: here it still holds
    # what the database held before the save.
    stored = None if created else getattr(instance, "_stored", None)
    was_public = created or stored is None or not stored[1]
    if not instance.private:
        if created or instance.shown_changed():
            pgsse.publish(CHANNEL, ROOM_EVENT, room_data(instance))
    elif was_public and not created:
        data = {"room_id": instance.pk, "room": instance.slug, "deleted": False}
        pgsse.publish(CHANNEL, ROOM_GONE_EVENT, data)


@receiver(post_delete, sender=Room)
def room_deleted(sender: type[Room], instance: Room, **kwargs: Any) -> None:
    if not instance.private:
        data = {"room_id": instance.pk, "room": instance.slug, "deleted": True}
        pgsse.publish(CHANNEL, ROOM_GONE_EVENT, data)
