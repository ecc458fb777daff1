"""Every saved or deleted message is published on its room's channel, whoever changes it
(views, API, admin): one event per change, whatever the room's size (pages count unread
messages for themselves, see :mod:`chat.unread`). And the log forgets what is gone:

- a message's events carry its key (``message:<id>``); an edit redacts the message's
  earlier events before publishing the new text, a deletion redacts them all before
  publishing the deletion: a replay across them delivers id-only frames, never the old
  or deleted text;
- a deleted room's channels are purged: their events go, and their names (by primary
  key) are never published to again.

Everything joins the saving transaction: delivered, redacted and purged if and only if
the change commits.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

import pgsse
from chat import message_data, reactions
from chat.models import Message, Room

DELETED_EVENT = "message_deleted"


@receiver(post_save, sender=Message)
def publish_saved(sender: type[Message], instance: Message, created: bool, **kwargs: Any) -> None:
    channel = Room.channel_of(instance.room_id)
    if not created:
        # Replay must never tell the older text: only the newest version stays readable.
        pgsse.redact(channel, key=instance.event_key)
    event = "message_created" if created else "message_updated"
    data = message_data.for_event(instance, created=created)
    pgsse.publish(channel, event, data, key=instance.event_key)


def _room_going_away(origin: object) -> bool:
    """Whether a deletion started from rooms: their channels go with them."""
    if isinstance(origin, QuerySet):
        return origin.model is Room
    return isinstance(origin, Room)


@receiver(post_delete, sender=Message)
def publish_deleted(sender: type[Message], instance: Message, **kwargs: Any) -> None:
    if _room_going_away(kwargs.get("origin")):
        return  # room_deleted purges the whole channel
    room = Room.objects.filter(pk=instance.room_id).only("slug").first()
    if room is None:
        return
    pgsse.redact(room.channel, key=instance.event_key)
    pgsse.redact(room.channel, key=reactions.event_key(instance.id))
    # The deletion itself carries no text, and no key: it stays, so that a page that
    # showed the message (from its history, or live) learns it is gone. A reply's
    # deletion carries its thread's count without it.
    data: dict[str, Any] = {
        "id": instance.id,
        "room": room.slug,
        "room_id": room.pk,
        "user": instance.author_name,
    }
    if instance.thread_id is not None:
        data["thread"] = message_data.thread_of_deleted(instance)
    pgsse.publish(room.channel, DELETED_EVENT, data)


@receiver(post_delete, sender=Room)
def room_deleted(sender: type[Room], instance: Room, **kwargs: Any) -> None:
    """A room's channels go with it; purging also ends their open streams."""
    for channel in instance.channels:
        pgsse.purge_channel(channel)
