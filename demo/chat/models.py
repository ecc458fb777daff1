"""Rooms and their messages."""

from __future__ import annotations

from django.db import models

#: Longest message, in characters.
MAX_MESSAGE_LENGTH = 4000


class Room(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=80)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def channel(self) -> str:
        """The pgsse channel carrying this room's events."""
        return f"room:{self.slug}"


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author_name = models.CharField(max_length=40)
    text = models.TextField(max_length=MAX_MESSAGE_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["room", "id"], name="chat_message_room_id")]

    def __str__(self) -> str:
        return f"{self.author_name}: {self.text[:40]}"

    def as_event_data(self) -> dict[str, object]:
        """What ``message_*`` events carry, and what the API returns."""
        return {
            "id": self.id,
            "room": self.room.slug,
            "user": self.author_name,
            "text": self.text,
            "created_at": self.created_at.isoformat(),
        }
