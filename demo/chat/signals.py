"""Every saved or deleted message is published, whoever changes it (views, API, admin),
and so are the unread counts it changes.

The publishes join the saving transaction: the events are delivered if and only if the
change commits.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

import pgsse
from chat import unread
from chat.models import Message, Room


@receiver(post_save, sender=Message)
def publish_saved(sender: type[Message], instance: Message, created: bool, **kwargs: Any) -> None:
    event = "message_created" if created else "message_updated"
    pgsse.publish(instance.room.channel, event, instance.as_event_data())
    # A new message, or an edit adding or removing a mention, changes the counts of
    # those who have not read it.
    if created or instance.mentions_changed:
        unread.publish_counts(instance.room, unread.affected_by(instance))


@receiver(post_delete, sender=Message)
def publish_deleted(sender: type[Message], instance: Message, **kwargs: Any) -> None:
    # The room may be going away with its messages (a cascade): read its slug, not the row.
    room = Room.objects.filter(pk=instance.room_id).first()
    if room is not None:
        pgsse.publish(room.channel, "message_deleted", {"id": instance.id, "room": room.slug})
        unread.publish_counts(room, unread.affected_by(instance))
