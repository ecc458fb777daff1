"""The sidebar every page shows: the user's rooms, their direct conversations, and all
public rooms, each sorted as people sort (:mod:`chat.collation`).

Rendered with the page, then kept live by the page itself (``static/chat/sidebar.js``)
from the directory channel (public rooms, people's names: :mod:`chat.directory`) and the
user's own channel (invitations, new direct conversations, rooms joined, left, renamed or
deleted: :mod:`chat.own_channel`).

Rooms are shown by their names, never by their slugs: a direct conversation by the names
of the others in it, as the reader sees them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chat import access
from chat.collation import sort_key
from chat.conversations import conversation_name
from chat.models import Membership, Room
from chat.profiles import Person, person
from chat.unread import RoomCount


@dataclass
class Entry:
    """A room as one user's sidebar shows it."""

    pk: int
    slug: str
    #: As this user reads it: a direct conversation is named after the others in it.
    name: str
    topic: str
    private: bool
    direct: bool
    joined: bool
    #: A direct conversation's people, the reader included.
    people: list[Person] = field(default_factory=list)
    unread: int = 0
    mentions: int = 0

    @property
    def label(self) -> str:
        """How text names it: ``#Lobby`` for a public room, ``Plans`` for a private one,
        ``bob, carol`` for a direct conversation."""
        return self.name if self.private else f"#{self.name}"

    @property
    def avatar(self) -> Person | None:
        """Whose avatar a direct conversation shows: the first other person in it."""
        if not self.direct or not self.people:
            return None
        return self.people[0]


@dataclass
class Sidebar:
    mine: list[Entry]
    direct: list[Entry]
    public: list[Entry]

    def by_pk(self, pk: int) -> Entry | None:
        for entry in (*self.mine, *self.direct, *self.public):
            if entry.pk == pk:
                return entry
        return None


def sidebar_for(user: Any, counts: dict[int, RoomCount]) -> Sidebar:
    """``user``'s sidebar, with the unread counts given (:func:`chat.unread.counts_for`)."""
    rooms = list(access.visible_rooms(user))
    joined: set[int] = set()
    people: dict[int, list[Person]] = {}
    if user.is_authenticated:
        joined = set(Membership.objects.filter(user_id=user.pk).values_list("room_id", flat=True))
        people = people_of_rooms([room.pk for room in rooms if room.direct])
    viewer = user.get_username() if user.is_authenticated else ""
    entries = [_entry(room, room.pk in joined, people.get(room.pk, []), viewer) for room in rooms]
    for entry in entries:
        count = counts.get(entry.pk)
        if count is not None:
            entry.unread, entry.mentions = count.unread, count.mentions

    def ordered(chosen: list[Entry]) -> list[Entry]:
        return sorted(chosen, key=lambda entry: (sort_key(entry.name), entry.pk))

    return Sidebar(
        mine=ordered([e for e in entries if e.joined and not e.direct]),
        direct=ordered([e for e in entries if e.direct]),
        public=ordered([e for e in entries if not e.private]),
    )


def entry_for(room: Room, user: Any) -> Entry:
    """One room as ``user``'s sidebar shows it."""
    people = people_of_rooms([room.pk]).get(room.pk, []) if room.direct else []
    joined = bool(
        user.is_authenticated and Membership.objects.filter(room=room, user_id=user.pk).exists()
    )
    return _entry(room, joined, people, user.get_username() if user.is_authenticated else "")


def _entry(room: Room, joined: bool, people: list[Person], viewer: str) -> Entry:
    others = [p for p in people if p.username != viewer] or people
    return Entry(
        pk=room.pk,
        slug=room.slug,
        name=conversation_name(people, viewer) if room.direct else room.name,
        topic=room.topic,
        private=room.private,
        direct=room.direct,
        joined=joined,
        people=sorted(others, key=lambda p: sort_key(p.name))
        + [p for p in people if p not in others],
    )


def people_of_rooms(room_pks: list[int]) -> dict[int, list[Person]]:
    """The people of these direct conversations, by room pk: one query."""
    found: dict[int, list[Person]] = {}
    if not room_pks:
        return found
    memberships = Membership.objects.filter(room_id__in=room_pks).select_related(
        "user__chat_profile"
    )
    for membership in memberships:
        found.setdefault(membership.room_id, []).append(person(membership.user))
    return found
