"""Direct conversations: one-to-one, or a small group, started from a name or a member list.

A direct conversation is a private room (so everything a private room has, it has: its
messages, unread counts, presence and typing, its stream, and 404 to everyone else,
exactly as for a room that does not exist) with three differences:

- its members are fixed when it starts: nobody is invited, removed, or leaves, and it has
  no owner (nobody deletes another's messages);
- there is one per set of people: starting a conversation with the same people again
  leads to the one that exists (``direct_key``, unique, holds the members' sorted pks);
- people see it named after the others in it, by their display names, never by its slug
  (``dm-`` and random characters, which nobody reads or guesses).

Its people learn of it at once, on every open page: the starter's pages get ``joined``,
the others' ``invited`` (:mod:`chat.own_channel`), and their sidebars list it live.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q

from chat import conf, own_channel
from chat.collation import sort_key
from chat.members import quietly
from chat.models import Membership, Room
from chat.profiles import Person
from chat.rooms import RoomError

#: ``dm-`` then this many random characters.
SLUG_RANDOM_LENGTH = 12
_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


class NoSuchPerson(RoomError):
    status = 404


def wanted_usernames(value: object) -> list[str]:
    """The usernames of a request: a list of strings, or one string of names separated
    by commas or spaces (the page's field); ``@`` before a name is allowed."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise RoomError('Name the people to talk to: {"users": ["bob", "carol"]}.')
    names = [name.strip().removeprefix("@") for name in value]
    for name in names:
        if "\x00" in name:
            raise RoomError("A username cannot contain NUL characters.")
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RoomError("A username is not valid Unicode text.") from exc
    return list(dict.fromkeys(name for name in names if name))


def start(starter: Any, usernames: Iterable[str]) -> tuple[Room, bool]:
    """The direct conversation of ``starter`` and the users called ``usernames`` (the one
    that exists, or a new one). Returns it and whether it is new. Call it in a transaction."""
    # Usernames are told apart without their case (sign-up refuses "Bob" beside "bob").
    own = starter.get_username().upper()
    names = list({name.upper(): name for name in usernames if name.upper() != own}.values())
    most = conf.get("CHAT_DIRECT_MAX_PEOPLE")
    if len(names) + 1 > most:
        raise RoomError(
            f"A direct conversation has at most {most} people, you included: "
            "for more, create a private room."
        )
    named = Q()
    for name in names:
        named |= Q(username__iexact=name)
    users = list(get_user_model().objects.filter(named, is_active=True)) if names else []
    found = {user.get_username().upper() for user in users}
    missing = [name for name in names if name.upper() not in found]
    if missing:
        raise NoSuchPerson(f"There is no user called '{missing[0]}'.")
    people = [starter, *users]
    key = ",".join(str(pk) for pk in sorted(user.pk for user in people))
    existing = Room.objects.filter(direct_key=key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            room = Room.objects.create(
                slug=f"dm-{_random_part()}",
                name=", ".join(sorted((u.get_username() for u in people), key=sort_key)),
                private=True,
                direct=True,
                direct_key=key,
            )
            for user in people:
                quietly(Membership(room=room, user=user)).save()
    except IntegrityError:
        # The same people started it at the same moment: theirs is the one.
        existing = Room.objects.filter(direct_key=key).first()
        if existing is None:
            raise
        return existing, False
    own_channel.tell_joined(room, starter.pk)
    for user in users:
        own_channel.tell_invited(room, user.pk, by=starter.get_username())
    return room, True


def _random_part() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(SLUG_RANDOM_LENGTH))


def conversation_name(people: Iterable[Person], viewer: str) -> str:
    """A direct conversation's name as ``viewer`` (a username) reads it: the others'
    names, sorted; one's own name, marked, in a conversation with oneself."""
    others = [p.name for p in people if p.username != viewer]
    if not others:
        mine = [p.name for p in people if p.username == viewer]
        return f"{mine[0]} (you)" if mine else "Nobody"
    return ", ".join(sorted(others, key=sort_key))


def people_of(room: Room) -> list[Person]:
    """A direct conversation's people, by username."""
    from chat.profiles import person

    memberships = Membership.objects.filter(room=room).select_related("user__chat_profile")
    return sorted((person(m.user) for m in memberships), key=lambda p: p.username)
