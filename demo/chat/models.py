"""Rooms (and direct conversations), memberships, messages, presence, people's profiles,
API tokens and rate-limit hits."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from chat.mentions import mentioned

#: Longest message, in characters.
MAX_MESSAGE_LENGTH = 4000


class Room(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=80)
    created_at = models.DateTimeField(auto_now_add=True)
    #: Private rooms are readable by their members only; the owner invites.
    private = models.BooleanField(default=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_rooms",
    )
    members: models.ManyToManyField[Any, Any] = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="rooms", blank=True
    )
    #: What the room is for, shown under its name; its owner sets it (chat.room_settings).
    topic = models.CharField(max_length=250, blank=True, default="")
    #: A direct conversation (chat.conversations): private, its members fixed when it
    #: starts, no owner; people see it named after the others in it, never by its slug.
    direct = models.BooleanField(default=False)
    #: A direct conversation's members' sorted pks ("3,17"): one conversation per set of
    #: people. NULL for rooms.
    direct_key = models.CharField(max_length=200, null=True, blank=True, unique=True)

    # The slug and privacy the database holds (set when loaded or saved), to tell whether
    # a save takes access away from open streams (see chat.revocation).
    _stored: tuple[str, bool] | None = None
    #: Set by save(): the channel whose open streams must end (the room became private,
    #: or moved to another slug, which its pages' addresses name), else None.
    closes_channel: str | None = None

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def from_db(cls, db: Any, field_names: Any, values: Any, **kwargs: Any) -> Room:
        # **kwargs: Django 6 passes fetch_mode= and warns about overrides that refuse it.
        room = super().from_db(db, field_names, values, **kwargs)
        slug, private = room.__dict__.get("slug"), room.__dict__.get("private")
        room._stored = (slug, private) if slug is not None and private is not None else None
        room._shown = room._what_people_see()
        return room

    # What pages show of a room (its sidebar entry and heading), as the database holds it
    # (set when loaded or saved): a save that changes it tells the pages (chat.directory,
    # chat.own_channel). None for a room loaded without some of these fields.
    _shown: tuple[Any, ...] | None = None

    def _what_people_see(self) -> tuple[Any, ...] | None:
        names = ("slug", "name", "topic", "private", "owner_id")
        if any(name not in self.__dict__ for name in names):
            return None
        return tuple(self.__dict__[name] for name in names)

    def shown_changed(self) -> bool:
        """Whether this save changes what pages show of the room (call it before save()
        returns: from a post_save receiver)."""
        return self._shown is not None and self._shown != self._what_people_see()

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.closes_channel = None
        stored = getattr(self, "_stored", None)
        if not self._state.adding and stored is not None:
            slug, private = stored
            if slug != self.slug or (self.private and not private):
                self.closes_channel = self.channel
        super().save(*args, **kwargs)
        self._stored = (self.slug, self.private)
        self._shown = self._what_people_see()

    @property
    def label(self) -> str:
        """How text names the room: ``#Lobby`` when public, ``Plans`` when private (a
        direct conversation is named after its people, as each reader sees them:
        chat.sidebar)."""
        return self.name if self.private else f"#{self.name}"

    # Channels are named by the room's primary key, never by its slug: a slug can change
    # hands (a room deleted, another created with the same name), a primary key never
    # does, so no position and no replay can ever reach another room's events.

    @staticmethod
    def channel_of(pk: Any) -> str:
        """The pgsse channel carrying the messages of the room whose primary key is ``pk``."""
        return f"room:{pk}"

    def _named(self, kind: str) -> str:
        if self.pk is None:
            raise ValueError("an unsaved room has no channels yet")
        return f"{kind}:{self.pk}"

    @property
    def channel(self) -> str:
        """The pgsse channel carrying this room's messages, ``room:<pk>``."""
        return self._named("room")

    @property
    def presence_channel(self) -> str:
        return self._named("presence")

    @property
    def typing_channel(self) -> str:
        """Typing notices: a channel of its own, so a short retention can prune it."""
        return self._named("typing")

    @property
    def channels(self) -> list[str]:
        """Everything a room page follows of its room, on one stream."""
        return [self.channel, self.presence_channel, self.typing_channel]


class Membership(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    joined_at = models.DateTimeField(auto_now_add=True)
    #: The newest message id the member has seen: later messages by others are unread.
    last_read_id = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="chat_membership_once")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.room}"


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
    )
    #: The author's username when posting (kept if the account goes away).
    author_name = models.CharField(max_length=150)
    # Blank when the message is its attachments alone.
    text = models.TextField(max_length=MAX_MESSAGE_LENGTH, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    #: Usernames ``@mentioned`` in the text (kept with it, for unread mention counts).
    mentions = ArrayField(models.CharField(max_length=150), default=list, blank=True)
    #: What the message shows of its files (``Attachment`` rows), as its events and the
    #: API carry it: kept with the message, since a posted file never changes, so that
    #: the event published when the message is saved has it (chat.attachments).
    attachments = models.JSONField(default=list, blank=True)
    # Replies (chat.threads). No database constraint on either: a reply outlives the
    # message it answers, and says that it was deleted.
    #: The message this one answers, None if it is not a reply.
    reply_to = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    #: The first message of the thread this reply belongs to (the root of ``reply_to``).
    thread = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # chat_message_thread_id serves it
        related_name="replies",
    )
    # What the database holds (set when loaded or saved), to tell what a save changes.
    _stored_text: str | None = None

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["room", "id"], name="chat_message_room_id"),
            models.Index(
                fields=["thread", "id"],
                name="chat_message_thread_id",
                condition=models.Q(thread__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.author_name}: {self.text[:40]}"

    @classmethod
    def from_db(cls, db: Any, field_names: Any, values: Any, **kwargs: Any) -> Message:
        message = super().from_db(db, field_names, values, **kwargs)
        message._stored_text = message.__dict__.get("text")
        return message

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Every save keeps the mentions in step with the text, and every change of the
        text (API, page, admin, shell) marks the message edited."""
        self.mentions = mentioned(self.text)
        stored = getattr(self, "_stored_text", None)
        if not self._state.adding and stored is not None and stored != self.text:
            self.edited_at = timezone.now()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "mentions", "edited_at"}
        super().save(*args, **kwargs)
        self._stored_text = self.text

    @property
    def event_key(self) -> str:
        """What names this message's events in the log, so that they can be redacted."""
        return f"message:{self.id}"

    def author_display_name(self) -> str:
        """The author's display name now (chat.profiles): their username if they set none,
        or if the account is gone. Load messages with ``select_related("author__chat_profile")``."""
        author = self.author if self.author_id is not None else None
        profile = getattr(author, "chat_profile", None)
        return (profile.display_name if profile is not None else "") or self.author_name

    def as_event_data(self, room_slug: str | None = None) -> dict[str, object]:
        """What ``message_*`` events carry, and what the API returns."""
        return {
            "id": self.id,
            "room": room_slug or self.room.slug,
            "room_id": self.room_id,
            "user": self.author_name,
            "name": self.author_display_name(),
            "text": self.text,
            "created_at": self.created_at.isoformat(),
            "edited_at": self.edited_at.isoformat() if self.edited_at else None,
            "attachments": self.attachments,
        }


class Presence(models.Model):
    """One open page (tab) of a user in a room, refreshed by the page's heartbeat."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="presences")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    tab = models.CharField(max_length=64)
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user", "tab"], name="chat_presence_tab_once")
        ]


class Profile(models.Model):
    """What a user shows of themselves: the name people see (chat.profiles)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="chat_profile",
    )
    #: Shown instead of the username wherever people read names; blank: the username.
    display_name = models.CharField(max_length=50, blank=True, default="")

    def __str__(self) -> str:
        return f"profile of {self.user}"


class PresenceSnapshot(models.Model):
    """The users last announced as present in a room: a change is published once."""

    room = models.OneToOneField(Room, on_delete=models.CASCADE, primary_key=True)
    users = models.JSONField(default=list)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(models.Model):
    """A user's API token; only its SHA-256 is stored."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token"
    )
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"token of {self.user}"

    @classmethod
    def issue(cls, user: object) -> str:
        """Create or replace ``user``'s token and return it (shown once, never stored)."""
        token = secrets.token_urlsafe(32)
        cls.objects.update_or_create(user=user, defaults={"digest": _digest(token)})
        return token

    @classmethod
    def user_for(cls, token: str) -> object | None:
        # Imported here: Django's auth backends need the models loaded.
        from chat.backends import user_for_token_digest

        user = user_for_token_digest(_digest(token))
        return user if user is not None and user.is_active else None


class RateHit(models.Model):
    """One counted action (a post, a typing notice) for the sliding-window rate limit."""

    key = models.CharField(max_length=200)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["key", "at"], name="chat_ratehit_key_at")]


class Attachment(models.Model):
    """A file posted with a message, kept in Django's default storage (``STORAGES``: a
    folder under ``make run``, object storage in a deployment that configures one).

    Its type comes from its bytes, never from its name (chat.uploads); it is served only
    through ``chat.downloads``, to those who may read its room.
    """

    #: Random, so that it can be named before the message is saved, and never guessed.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="files")
    #: The name it was posted with (cleaned): shown, and offered when downloading.
    name = models.CharField(max_length=255)
    #: The type its bytes say it is; ``application/octet-stream`` when they say nothing.
    content_type = models.CharField(max_length=100)
    size = models.BigIntegerField()
    file = models.FileField(max_length=255)
    #: A smaller copy of an image, for the message list (empty: the image itself is small).
    preview = models.FileField(max_length=255, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @property
    def is_image(self) -> bool:
        return self.width is not None


class Reaction(models.Model):
    """One user's emoji reaction to a message (chat.reactions): each emoji once per user."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    emoji = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "emoji", "user"], name="chat_reaction_once")
        ]

    def __str__(self) -> str:
        return f"{self.emoji} by {self.user} on {self.message_id}"
