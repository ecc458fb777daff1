"""Who may read a room (chat.access): the stream's one-statement read of a room and the
user's membership says what ``can_read`` says, for every kind of room and reader."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, User

from chat import access
from chat.models import Membership, Room

pytestmark = pytest.mark.django_db


@pytest.fixture
def rooms() -> dict[str, Room]:
    owner = User.objects.create_user("owner")
    public = Room.objects.create(slug="open", name="Open")
    private = Room.objects.create(slug="closed", name="Closed", private=True, owner=owner)
    Membership.objects.create(room=private, user=owner)
    return {"public": public, "private": private}


@pytest.fixture
def readers(rooms: dict[str, Room]) -> dict[str, Any]:
    inactive = User.objects.create_user("inactive", is_active=False)
    Membership.objects.create(room=rooms["private"], user=inactive)
    return {
        "member": User.objects.get(username="owner"),
        "inactive member": inactive,
        "stranger": User.objects.create_user("stranger"),
        "anonymous": AnonymousUser(),
    }


@pytest.mark.parametrize("anonymous_read", [False, True])
def test_the_streams_read_agrees_with_can_read(
    rooms: dict[str, Room], readers: dict[str, Any], settings: Any, anonymous_read: bool
) -> None:
    settings.CHAT_ANONYMOUS_READ = anonymous_read
    for (kind, room), (who, user) in itertools.product(rooms.items(), readers.items()):
        found = access.readable_room(user, room.slug)
        expected = room if access.can_read(user, room) else None
        assert found == expected, (kind, who, anonymous_read)
        if found is not None:
            assert (found.slug, found.private, found.name) == (room.slug, room.private, room.name)


def test_a_private_room_is_readable_by_its_members_only(rooms: dict[str, Room]) -> None:
    member, stranger = User.objects.get(username="owner"), User.objects.create_user("bob")
    assert access.readable_room(member, "closed") == rooms["private"]
    assert access.readable_room(stranger, "closed") is None
    Membership.objects.filter(room=rooms["private"], user=member).delete()
    assert access.readable_room(member, "closed") is None


def test_an_unknown_room_is_none(rooms: dict[str, Room]) -> None:
    assert access.readable_room(User.objects.get(username="owner"), "nowhere") is None


def test_the_room_and_the_membership_take_one_statement(
    rooms: dict[str, Room], django_assert_num_queries: Any
) -> None:
    member = User.objects.get(username="owner")
    with django_assert_num_queries(1):
        assert access.readable_room(member, "closed") == rooms["private"]


def test_a_room_read_so_keeps_what_a_save_compares(rooms: dict[str, Room]) -> None:
    """Saved after such a read, a room made private still ends its streams
    (chat.revocation compares with what was read)."""
    room = access.readable_room(User.objects.get(username="owner"), "open")
    assert room is not None
    room.private = True
    room.save()
    assert room.closes_channel == room.channel
