"""Creating rooms, joining, leaving and inviting: shared by the pages and the API."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from chat.models import Membership, Room

MAX_NAME_LENGTH = 80
SLUG_LENGTH = 50
#: Slugs that name pages, not rooms (``/rooms/new/``).
RESERVED_SLUGS = {"new"}


class RoomError(ValueError):
    """A room request that cannot be done; the message says why, for people."""


def create_room(owner: Any, name: object, private: bool) -> Room:
    """A new room named ``name`` (its slug derived from it), owned and joined by ``owner``."""
    if not isinstance(name, str) or not name.strip():
        raise RoomError("A room needs a name.")
    name = " ".join(name.split())
    if len(name) > MAX_NAME_LENGTH:
        raise RoomError(f"A room name is at most {MAX_NAME_LENGTH} characters.")
    slug = slugify(name)[:SLUG_LENGTH].strip("-")
    if not slug:
        raise RoomError("A room name needs at least one letter or digit (a-z, 0-9).")
    if slug in RESERVED_SLUGS:
        raise RoomError(f"'{slug}' is reserved: pick another name.")
    try:
        with transaction.atomic():
            room = Room.objects.create(slug=slug, name=name, private=private, owner=owner)
            Membership.objects.create(room=room, user=owner)
    except IntegrityError as exc:
        raise RoomError(f"The room '{slug}' exists already: pick another name.") from exc
    return room


def join(room: Room, user: Any) -> None:
    if room.private:
        raise RoomError("A private room is joined by invitation of its owner.")
    Membership.objects.get_or_create(room=room, user=user)


def leave(room: Room, user: Any) -> None:
    if room.owner_id == user.pk:
        raise RoomError("The owner of a room cannot leave it.")
    Membership.objects.filter(room=room, user=user).delete()


def invite(room: Room, owner: Any, username: str) -> Any:
    """Add the user called ``username`` to ``room``; only its owner may."""
    if room.owner_id != owner.pk:
        raise RoomError("Only the room's owner may invite.")
    invited = get_user_model().objects.filter(username=username.strip()).first()
    if invited is None:
        raise RoomError(f"There is no user called '{username.strip()}'.")
    Membership.objects.get_or_create(room=room, user=invited)
    return invited
