"""Every saved or deleted message is published, whoever changes it (views, API, admin).

The publish joins the saving transaction: the event is delivered if and only if the
change commits.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

import pgsse
from chat.models import Message, Room


@receiver(post_save, sender=Message)
def publish_saved(sender: type[Message], instance: Message, created: bool, **kwargs: Any) -> None:
    event = "message_created" if created else "message_updated"
    pgsse.publish(instance.room.channel, event, instance.as_event_data())


@receiver(post_delete, sender=Message)
def publish_deleted(sender: type[Message], instance: Message, **kwargs: Any) -> None:
    # The room may be going away with its messages (a cascade): read its slug, not the row.
    slug = Room.objects.filter(pk=instance.room_id).values_list("slug", flat=True).first()
    if slug is not None:
        pgsse.publish(f"room:{slug}", "message_deleted", {"id": instance.id, "room": slug})
