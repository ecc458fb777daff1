"""A room's settings, changed by its owner: its name, its topic, who owns it, and its end.

Shared by the settings page and the API. A room keeps its slug (its address) when it is
renamed: links, bookmarks and open pages stay good; people read its name. Every change
reaches every open page at once through the room's model signals: the directory channel
for a public room, its members' own channels for a private one (:mod:`chat.directory`,
:mod:`chat.own_channel`). Deleting a room ends its streams and purges its channels
(:mod:`chat.revocation`, :mod:`chat.signals`).

A direct conversation has no owner and no settings.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from chat.collation import fold
from chat.models import Membership, Room
from chat.rooms import MAX_NAME_LENGTH, NotMember, NotOwner, RoomError

MAX_TOPIC_LENGTH = 250


def _owned(room: Room, user: Any) -> None:
    if room.direct:
        raise RoomError("A direct conversation has no owner and no settings.")
    if room.owner_id != user.pk:
        raise NotOwner("Only the room's owner may change its settings.")


def _text(value: object, what: str, longest: int) -> str:
    if not isinstance(value, str):
        raise RoomError(f"{what} must be text.")
    if "\x00" in value:
        raise RoomError(f"{what} cannot contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RoomError(f"{what} is not valid Unicode text.") from exc
    text = " ".join(value.split())  # one line, as shown
    if len(text) > longest:
        raise RoomError(f"{what} is at most {longest} characters.")
    return text


def rename(room: Room, user: Any, name: object) -> Room:
    """Give ``room`` a new name (its slug stays). Two public rooms never share a name, as
    people read it (case and accents folded): that would leave them no way to tell."""
    _owned(room, user)
    name = _text(name, "A room name", MAX_NAME_LENGTH)
    if not name:
        raise RoomError("A room needs a name.")
    if not room.private:
        folded = fold(name)
        others = Room.objects.filter(private=False).exclude(pk=room.pk)
        if any(fold(other) == folded for other in others.values_list("name", flat=True)):
            raise RoomError(f"There is a public room called {name!r} already: pick another name.")
    room.name = name
    room.save(update_fields=["name"])
    return room


def set_topic(room: Room, user: Any, topic: object) -> Room:
    """What the room is for, shown under its name ('' for none)."""
    _owned(room, user)
    room.topic = _text(topic, "A topic", MAX_TOPIC_LENGTH)
    room.save(update_fields=["topic"])
    return room


def hand_over(room: Room, user: Any, username: object) -> Any:
    """Make the member called ``username`` the room's owner; ``user`` stays a member."""
    _owned(room, user)
    if not isinstance(username, str) or not username.strip():
        raise RoomError("Name the member who will own the room.")
    username = username.strip()
    if username.upper() == user.get_username().upper():
        raise RoomError("You own this room already.")
    heir = get_user_model().objects.filter(username__iexact=username, is_active=True).first()
    if heir is None or not Membership.objects.filter(room=room, user=heir).exists():
        raise NotMember(f"{username} is not a member of {room.label}: invite them first.")
    room.owner = heir
    room.save(update_fields=["owner"])
    return heir


def delete(room: Room, user: Any) -> None:
    """Delete the room, its messages and memberships: its open pages end at once."""
    _owned(room, user)
    room.delete()
