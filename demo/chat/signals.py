"""Every saved or deleted message is published on its room's channel, whoever changes it
(views, API, admin): one event per change, whatever the room's size (pages count unread
messages for themselves, see :mod:`chat.unread`).

The publishes join the saving transaction: the events are delivered if and only if the
change commits.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

import pgsse
from chat.models import Message, Room

DELETED_EVENT = "message_deleted"


@receiver(post_save, sender=Message)
def publish_saved(sender: type[Message], instance: Message, created: bool, **kwargs: Any) -> None:
    event = "message_created" if created else "message_updated"
    pgsse.publish(Room.channel_of(instance.room_id), event, instance.as_event_data())


def _room_going_away(origin: object) -> bool:
    """Whether a deletion started from rooms: their channels go with them."""
    if isinstance(origin, QuerySet):
        return origin.model is Room
    return isinstance(origin, Room)


@receiver(post_delete, sender=Message)
def publish_deleted(sender: type[Message], instance: Message, **kwargs: Any) -> None:
    if _room_going_away(kwargs.get("origin")):
        return
    room = Room.objects.filter(pk=instance.room_id).only("slug").first()
    if room is None:
        return
    data = {"id": instance.id, "room": room.slug, "room_id": room.pk, "user": instance.author_name}
    pgsse.publish(room.channel, DELETED_EVENT, data)
