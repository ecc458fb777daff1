"""Creating rooms, joining, leaving, inviting and removing members: shared by the pages
and the API.

Leaving a private room, or being removed from it, takes its access away at once: the
membership's deletion ends that user's streams of the room and their presence in it, in
the same transaction (:mod:`chat.revocation`, whoever deletes the membership).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from chat import access, own_channel
from chat.members import quietly
from chat.models import Membership, Room

MAX_NAME_LENGTH = 80
SLUG_LENGTH = 50
#: Slugs that name pages, not rooms (``/rooms/new/``).
RESERVED_SLUGS = {"new"}
#: Private rooms' slugs end with this many random characters: nobody finds a private
#: room by guessing its name, and creating a room never tells whether one exists.
PRIVATE_SUFFIX_LENGTH = 8
_SUFFIX_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


class RoomError(ValueError):
    """A room request that cannot be done; the message says why, for people. ``status``
    is the API's answer."""

    status = 400


class NotOwner(RoomError):
    status = 403


class NotMember(RoomError):
    status = 404


class NotFound(RoomError):
    """No such user."""

    status = 404


class AlreadyMember(RoomError):
    status = 409


def _printable(value: str, what: str) -> str:
    if "\x00" in value:
        raise RoomError(f"{what} cannot contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RoomError(f"{what} is not valid Unicode text.") from exc
    return value


def _private_suffix() -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(PRIVATE_SUFFIX_LENGTH))


def create_room(owner: Any, name: object, private: bool) -> Room:
    """A new room named ``name`` (its slug derived from it), owned and joined by ``owner``."""
    if not isinstance(name, str) or not name.strip():
        raise RoomError("A room needs a name.")
    name = " ".join(_printable(name, "A room name").split())
    if len(name) > MAX_NAME_LENGTH:
        raise RoomError(f"A room name is at most {MAX_NAME_LENGTH} characters.")
    base = slugify(name)[: SLUG_LENGTH - PRIVATE_SUFFIX_LENGTH - 1 if private else SLUG_LENGTH]
    base = base.strip("-")
    if not base:
        raise RoomError("A room name needs at least one letter or digit (a-z, 0-9).")
    if base in RESERVED_SLUGS and not private:
        raise RoomError(f"'{base}' is reserved: pick another name.")
    slug = f"{base}-{_private_suffix()}" if private else base
    try:
        with transaction.atomic():
            room = Room.objects.create(slug=slug, name=name, private=private, owner=owner)
            quietly(Membership(room=room, user=owner)).save()
            own_channel.tell_joined(room, owner.pk)  # the owner's other pages list it
    except IntegrityError as exc:
        taken = Room.objects.filter(slug=slug).first()
        if taken is not None and access.can_read(owner, taken):
            raise RoomError(
                f"A room with this name's address exists already ({taken.label}): pick "
                "another name."
            ) from exc
        # A private room the user may not see (or a clash of random suffixes): say
        # nothing that would tell it exists.
        raise RoomError("This name cannot be used for a new room: pick another.") from exc
    return room


def add_member(room: Room, user: Any, *, by_posting: bool = False) -> tuple[Membership, bool]:
    """Make ``user`` a member (if not already); what was posted before counts as read.
    Returns the membership and whether it is new.

    ``by_posting``: the user joins by posting in the room, whose message tells its pages
    (chat.members); their own pages are told here either way.
    """
    from chat.unread import newest_id

    found = Membership.objects.filter(room=room, user_id=user.pk).first()
    if found is not None:
        return found, False
    membership = Membership(room=room, user_id=user.pk, last_read_id=newest_id(room))
    if by_posting:
        quietly(membership)
    try:
        with transaction.atomic():
            membership.save()
    except IntegrityError:
        # Joined at the same moment by another request (two first posts, say).
        return Membership.objects.get(room=room, user_id=user.pk), False
    own_channel.tell_joined(room, user.pk)
    return membership, True


def join(room: Room, user: Any) -> None:
    if room.private:
        raise RoomError("A private room is joined by invitation of its owner.")
    add_member(room, user)


def leave(room: Room, user: Any) -> None:
    if room.direct:
        raise RoomError("A direct conversation cannot be left: its people are fixed.")
    if room.owner_id == user.pk:
        raise RoomError(
            "The owner of a room cannot leave it: hand it over to another member first "
            "(Room settings), or delete it."
        )
    Membership.objects.filter(room=room, user=user).delete()


def invite(room: Room, owner: Any, username: str) -> Any:
    """Add the user called ``username`` to ``room``; only its owner may."""
    if room.direct:
        raise RoomError(
            "A direct conversation's people are fixed: start another one with everyone "
            "you want in it."
        )
    if room.owner_id != owner.pk:
        raise NotOwner("Only the room's owner may invite.")
    username = _printable(username, "A username").strip()
    invited = get_user_model().objects.filter(username__iexact=username, is_active=True).first()
    if invited is None:
        raise NotFound(f"There is no user called '{username}'.")
    if invited.pk == owner.pk:
        raise AlreadyMember(f"You are in {room.label} already: you own it.")
    _, joined = add_member(room, invited)
    if not joined:
        raise AlreadyMember(f"{username} is a member of {room.label} already.")
    own_channel.tell_invited(room, invited.pk, by=owner.get_username())
    return invited


def remove(room: Room, owner: Any, username: str) -> Any:
    """Take the user called ``username`` out of private ``room``; only its owner may.

    A public room is readable by everyone logged in: there is nothing to take away.
    """
    if room.owner_id != owner.pk:
        raise NotOwner("Only the room's owner may remove members.")
    if not room.private:
        raise RoomError(
            "Only members of a private room can be removed: a public room is open to "
            "everyone logged in."
        )
    username = _printable(username, "A username").strip()
    membership = (
        Membership.objects.select_related("user")
        .filter(room=room, user__username__iexact=username)
        .first()
    )
    if membership is None:
        raise NotMember(f"{username} is not a member of {room.label}.")
    if membership.user_id == room.owner_id:
        raise RoomError("The owner cannot be removed from their own room.")
    membership.delete()
    return membership.user
