"""People as others see them: a display name (the username until one is set) and an
avatar made of initials on a colour of their own.

Names change live: setting a display name publishes ``person`` on the directory channel
(:mod:`chat.directory`), which every page follows, so messages, member lists and direct
conversations show the new name without a reload. The pages draw avatars themselves
(``static/chat/profiles.js``) with the same rules as :func:`initials` and :func:`hue`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from chat import directory, inputs
from chat.errors import ApiError
from chat.models import Profile

MAX_DISPLAY_NAME_LENGTH = 50
#: Avatar colours (``.avatar[data-hue]`` in chat.css), chosen by the username.
HUES = 8


@dataclass(frozen=True)
class Person:
    """What a page needs to show someone: their username, name and avatar."""

    username: str
    name: str

    @property
    def initials(self) -> str:
        return initials(self.name)

    @property
    def hue(self) -> int:
        return hue(self.username)

    def as_data(self) -> dict[str, str]:
        return {"user": self.username, "name": self.name}


def initials(name: str) -> str:
    """The first letter or digit of a name's first two words that have one, upper-cased:
    ``"Ada Lovelace"`` -> ``"AL"``, ``"bob"`` -> ``"B"``, ``"<b>Bob</b> (home)"`` -> ``"BH"``
    (the pages compute them alike: static/chat/profiles.js)."""
    firsts = [_first_alphanumeric.search(word) for word in name.split()]
    return "".join(found[0] for found in firsts if found)[:2].upper() or "?"


#: A letter or a digit (``\w`` less the underscore), as profiles.js's ``[\p{L}\p{N}]``.
_first_alphanumeric = re.compile(r"[^\W_]")


def hue(username: str) -> int:
    """An avatar's colour, stable for a username (the pages compute it alike)."""
    return sum(ord(char) for char in username) % HUES


def display_name(user: Any) -> str:
    """``user``'s display name, or their username if they have set none."""
    profile = getattr(user, "chat_profile", None)
    name = profile.display_name if profile is not None else ""
    return name or str(user.get_username())


def person(user: Any) -> Person:
    return Person(str(user.get_username()), display_name(user))


def people_named(usernames: Iterable[str]) -> dict[str, Person]:
    """The people of these usernames who exist, by username: one query."""
    wanted = set(usernames)
    if not wanted:
        return {}
    users = get_user_model().objects.filter(username__in=wanted).select_related("chat_profile")
    return {str(user.get_username()): person(user) for user in users}


def clean_display_name(value: object) -> str:
    """A display name as people type it: spaces collapsed; blank for none."""
    if not isinstance(value, str):
        raise ApiError(400, 'Send the display name as {"display_name": "..."} ("" for none).')
    name = " ".join(inputs.clean_string(value, "A display name").split())
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise ApiError(400, f"A display name is at most {MAX_DISPLAY_NAME_LENGTH} characters.")
    return name


def set_display_name(user: Any, value: object) -> Person:
    """Set ``user``'s display name (blank: none); every page is told (:func:`profile_saved`)."""
    name = clean_display_name(value)
    with transaction.atomic():
        profile = Profile.objects.select_for_update().filter(user=user).first()
        if profile is None:
            profile = Profile.objects.create(user=user, display_name=name)
        elif profile.display_name != name:
            profile.display_name = name
            profile.save(update_fields=["display_name"])
        user.chat_profile = profile
    return person(user)


@receiver(post_save, sender=Profile)
def profile_saved(sender: type[Profile], instance: Profile, **kwargs: Any) -> None:
    """A display name set anywhere (the profile page, the API, the admin) reaches every
    page, in the saving transaction."""
    directory.tell_person(
        Person(instance.user.get_username(), instance.display_name or instance.user.get_username())
    )
