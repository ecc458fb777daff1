"""Unread counts and mentions, counted where they are read: one event per message whatever
the room's size, counts with the page, the rooms a stream follows, the user's own channel
(read positions, invitations, removals); edits through the admin marked as edits; sign-up
lands where it should; taken private slugs are never confirmed."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client

import pgsse
from chat import unread
from chat.mentions import mentioned
from chat.models import Membership, Message, Room
from pgsse.models import Event
from pgsse.position import MAX_POSITION_LENGTH
from tests.chat_accounts import PASSWORD, ChatAccount
from tests.clients import StreamReader, open_stream
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def of_type(reader: StreamReader, event_type: str) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in reader.of_type(event_type)]


def page_config(html: str) -> dict[str, Any]:
    found = re.search(r'id="chat-config"[^>]*>(.*?)</script>', html)
    assert found is not None, html
    config: dict[str, Any] = json.loads(found.group(1))
    return config


def room_pk(slug: str) -> int:
    return int(Room.objects.get(slug=slug).pk)


async def account(server: LiveServer, name: str) -> ChatAccount:
    return await sync_to_async(ChatAccount)(server.url, name)


def test_mentions_are_found_as_people_write_them() -> None:
    text = "@bob look, @carol.smith. mail me at x@example.com, @bob again, @-dash @"
    assert mentioned(text) == ["bob", "carol.smith", "-dash"]


def test_a_message_in_a_room_of_2000_members_is_one_event(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    alice.say("lobby", "alice is a member")
    lobby = Room.objects.get(slug="lobby")
    members = User.objects.bulk_create(
        [User(username=f"member{n}", password="!") for n in range(2000)]
    )
    Membership.objects.bulk_create([Membership(room=lobby, user=user) for user in members])
    before = Event.objects.count()
    sent = alice.say("lobby", "hello @member7 and everyone")
    added = list(Event.objects.order_by("id").values_list("channel", "type")[before:])
    assert added == [(lobby.channel, "message_created")], added
    # Every member's count includes it, computed when read.
    counts = unread.counts_for(User.objects.get(username="member7"))
    assert (counts[lobby.pk].unread, counts[lobby.pk].mentions) == (2, 1)
    assert counts[lobby.pk].ids[-1] == counts[lobby.pk].mentioning[-1] == sent["id"]
    alice.close()


def test_posting_after_unread_messages_tells_the_posters_pages_once(server: LiveServer) -> None:
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    bob.say("lobby", "bob is a member")
    alice.say("lobby", "for bob to read")
    before = Event.objects.count()
    sent = bob.say("lobby", "read it, answering")
    lobby = Room.objects.get(slug="lobby")
    bob_pk = User.objects.get(username="bob").pk
    added = list(Event.objects.order_by("id").values_list("channel", "type", "data")[before:])
    assert [row[:2] for row in added] == [
        (lobby.channel, "message_created"),
        (f"user:{bob_pk}", "read"),
    ]
    assert json.loads(added[1][2]) == {"room_id": lobby.pk, "room": "lobby", "up_to": sent["id"]}
    alice.close()
    bob.close()


def test_the_room_list_carries_the_counts_and_what_its_stream_follows(
    server: LiveServer,
) -> None:
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    bob.say("random", "bob joins random")
    first = alice.say("random", "hello @bob")
    second = alice.say("random", "are you there?")
    index = bob.client.get("/")
    random = room_pk("random")
    badge = re.search(
        rf'<span class="unread mentioned" data-unread-for="{random}">(.*?)</span>\s*</li>',
        index.text,
        flags=re.DOTALL,
    )
    assert badge is not None, index.text
    assert "2 unread, 1 mentioning you" in badge.group(1)
    config = page_config(index.text)
    assert config["follow"] == [random]
    assert config["followQuery"] == f"?follow={random}"
    mine = Membership.objects.get(user__username="bob", room__slug="random")
    assert config["unread"] == [
        {
            "room_id": random,
            "room": "random",
            "read": mine.last_read_id,
            "unread": 2,
            "mentions": 1,
            "ids": [first["id"], second["id"]],
            "mentioning": [first["id"]],
        }
    ]
    # Its position is over the channels its stream will follow: the directory (public
    # rooms, people's names), the user's own, the followed room's.
    bob_pk = User.objects.get(username="bob").pk
    assert config["position"] == pgsse.current_position(
        ["directory", f"user:{bob_pk}", f"room:{random}"]
    )
    # The API answers the same, for the rooms a page does not follow.
    again = bob.api("GET", f"/api/unread/?rooms={random}").json()
    assert again == {"rooms": config["unread"]}
    assert bob.api("GET", "/api/unread/?rooms=x").status_code == 400
    alice.close()
    bob.close()


async def test_a_stream_follows_its_rooms_and_the_users_own_channel(server: LiveServer) -> None:
    alice, bob = await account(server, "alice"), await account(server, "bob")
    await sync_to_async(bob.say)("lobby", "bob is a member")
    plans = await sync_to_async(alice.create_room)("Plans", private=True)
    lobby, secret = await sync_to_async(room_pk)("lobby"), await sync_to_async(room_pk)(plans)
    async with (
        bob.stream_client() as client,
        # Bob asks for a private room he is not in, too: it is left out.
        open_stream(client, f"/events/me/?follow={lobby},{secret}") as seen,
    ):
        await seen.wait_for(lambda r: bool(r.last_id))
        await sync_to_async(alice.say)(plans, "not for bob")
        await sync_to_async(alice.say)("lobby", "one")
        sent = await sync_to_async(alice.say)("lobby", "two, for @bob")
        await seen.wait_for(lambda r: len(r.messages()) == 2)
        assert [m["text"] for m in seen.messages()] == ["one", "two, for @bob"]
        assert {m["room_id"] for m in seen.messages()} == {lobby}
        # Reading the room, on another page or through the API, reaches every page.
        read = await sync_to_async(bob.api)("POST", "/api/rooms/lobby/read/", {})
        assert read.status_code == 204
        await seen.wait_for(lambda r: bool(r.of_type("read")))
        assert of_type(seen, "read") == [{"room_id": lobby, "room": "lobby", "up_to": sent["id"]}]
        # A deletion says whose message it was (a page knows whether it counted it).
        url = f"/api/rooms/lobby/messages/{sent['id']}/"
        assert (await sync_to_async(alice.api)("DELETE", url)).status_code == 204
        await seen.wait_for(lambda r: bool(r.of_type("message_deleted")))
        assert of_type(seen, "message_deleted") == [
            {"id": sent["id"], "room": "lobby", "room_id": lobby, "user": "alice"}
        ]
    alice.close()
    bob.close()


@pytest.mark.parametrize("follow", ["x", "1,,2", "²", "1," * 20 + "1", "9" * 19])
def test_a_stream_refuses_a_bad_follow(server: LiveServer, follow: str) -> None:
    bob = ChatAccount(server.url, "bob")
    for path in ("/events/me/", "/rooms/lobby/events/"):
        response = bob.client.get(path, params={"follow": follow})
        assert response.status_code == 400
        assert "'follow' is a comma-separated list of at most 11 room ids" in response.text
    bob.close()


async def test_invitations_and_removals_reach_the_users_own_channel(server: LiveServer) -> None:
    alice, bob = await account(server, "alice"), await account(server, "bob")
    plans = await sync_to_async(alice.create_room)("Plans", private=True)
    secret = await sync_to_async(room_pk)(plans)
    async with bob.stream_client() as client, open_stream(client, "/events/me/") as seen:
        await seen.wait_for(lambda r: bool(r.last_id))
        invited = await sync_to_async(alice.form)(f"/rooms/{plans}/invite/", username="bob")
        assert invited.status_code == 302
        await seen.wait_for(lambda r: bool(r.of_type("invited")))
        # With what the sidebar shows of the room, for bob's pages to list it at once.
        assert of_type(seen, "invited") == [
            {
                "room_id": secret,
                "room": plans,
                "name": "Plans",
                "topic": "",
                "private": True,
                "direct": False,
                "owner": "alice",
                "by": "alice",
            }
        ]
        removed = await sync_to_async(alice.api)("DELETE", f"/api/rooms/{plans}/members/bob/")
        assert removed.status_code == 204
        await seen.wait_for(lambda r: bool(r.of_type("removed")))
        assert of_type(seen, "removed") == [{"room_id": secret, "room": plans}]
    alice.close()
    bob.close()


async def test_opening_a_room_marks_it_read(server: LiveServer) -> None:
    alice, bob = await account(server, "alice"), await account(server, "bob")
    await sync_to_async(bob.say)("random", "bob joins random")
    await sync_to_async(alice.say)("random", "hello @bob")
    last = await sync_to_async(alice.say)("random", "are you there?")
    random = await sync_to_async(room_pk)("random")
    async with bob.stream_client() as client, open_stream(client, "/events/me/") as seen:
        await seen.wait_for(lambda r: bool(r.last_id))
        page = await sync_to_async(bob.client.get)("/rooms/random/")
        assert page.status_code == 200
        await seen.wait_for(lambda r: bool(r.of_type("read")))
        assert of_type(seen, "read") == [{"room_id": random, "room": "random", "up_to": last["id"]}]
    # The page knows where the unread messages started (for its divider), and counts
    # nothing unread in the room it shows.
    config = page_config(page.text)
    first = await sync_to_async(Message.objects.get)(text="bob joins random")
    assert config["lastReadId"] == first.id
    assert config["roomId"] == random
    (count,) = config["unread"]
    assert (count["unread"], count["ids"]) == (0, [])
    alice.close()
    bob.close()


def test_joining_a_room_starts_with_nothing_unread(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    for n in range(3):
        alice.say("lobby", f"before bob {n}")
    bob = ChatAccount(server.url, "bob")
    assert bob.form("/rooms/lobby/join/").status_code == 302
    membership = Membership.objects.get(user__username="bob", room__slug="lobby")
    assert membership.last_read_id == Message.objects.latest("id").id
    assert f'data-unread-for="{room_pk("lobby")}" hidden' in bob.client.get("/").text
    alice.close()
    bob.close()


async def test_a_room_page_follows_the_users_most_active_rooms(server: LiveServer) -> None:
    alice = await account(server, "alice")

    def rooms_of_alice() -> list[Room]:
        user = User.objects.get(username="alice")
        rooms = [Room.objects.create(slug=f"room-{n}", name=f"Room {n}") for n in range(15)]
        for room in reversed(rooms):  # room 0 is the most recently active
            Membership.objects.create(room=room, user=user)
            Message.objects.create(room=room, author=user, author_name="alice", text="hi")
        return rooms

    rooms = await sync_to_async(rooms_of_alice)()
    page = page_config((await sync_to_async(alice.client.get)("/rooms/room-3/")).text)
    assert page["follow"] == [room.pk for room in rooms if room.slug != "room-3"][:11]
    assert len(page["unread"]) == 15
    index = page_config((await sync_to_async(alice.client.get)("/")).text)
    assert index["follow"] == [room.pk for room in rooms][:11]
    # The page's stream follows 16 channels, pgsse's most (its room's 3, the directory,
    # the user's own and 11 rooms followed for their counts), and resumes from the page's
    # position (no reset); its ids stay well within pgsse's longest position.
    assert len(page["position"].split(":", 1)[1].split(".")) == 16
    path = f"/rooms/room-3/events/{page['followQuery']}"
    async with (
        alice.stream_client() as client,
        open_stream(client, path, last_event_id=page["position"]) as seen,
    ):
        await seen.wait_for(lambda r: bool(r.last_id))
        sent = await sync_to_async(alice.say)("room-0", "in a followed room")
        await seen.wait_for(lambda r: bool(r.messages()))
        assert seen.messages() == [sent]
        assert not seen.of_type("reset")
        assert len(seen.last_id) < MAX_POSITION_LENGTH // 3
    alice.close()


async def test_an_edit_in_the_admin_reaches_readers_marked_edited(server: LiveServer) -> None:
    alice = await account(server, "alice")
    sent = await sync_to_async(alice.say)("lobby", "speling")

    def edit_in_admin() -> int:
        admin = User.objects.create_superuser("admin", "admin@example.com", "x")
        client = Client()
        client.force_login(admin)
        form = {
            "room": Message.objects.get(id=sent["id"]).room_id,
            "author": Message.objects.get(id=sent["id"]).author_id,
            "author_name": "alice",
            "text": "spelling",
        }
        return client.post(f"/admin/chat/message/{sent['id']}/change/", form).status_code

    async with alice.stream_client() as client, open_stream(client, "/rooms/lobby/events/") as seen:
        await seen.wait_for(lambda r: bool(r.last_id))
        assert await sync_to_async(edit_in_admin)() == 302
        await seen.wait_for(lambda r: bool(r.of_type("message_updated")))
        (updated,) = [json.loads(e.data) for e in seen.of_type("message_updated")]
        assert updated["text"] == "spelling"
        assert updated["edited_at"] is not None
    alice.close()


def test_the_admin_lists_messages_newest_first_with_long_texts_cut(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    alice.say("lobby", "first")
    alice.say("lobby", "y" * 500)
    admin = User.objects.create_superuser("admin", "admin@example.com", "x")
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/chat/message/").content.decode()
    assert page.index("y" * 79 + "…") < page.index("first")
    assert "y" * 81 not in page
    alice.close()


def test_signing_up_from_the_log_in_page_lands_on_the_rooms(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        first = client.get("/", follow_redirects=True)
        assert str(first.url).endswith("/accounts/login/?next=/")
        link = re.search(r'<a href="(/accounts/signup/[^"]*)">Sign up</a>', first.text)
        assert link is not None
        signup_url = link.group(1).replace("&amp;", "&")
        assert "accounts" not in signup_url.split("next=", 1)[1], signup_url
        page = client.get(signup_url)
        form = {"username": "newcomer", "password1": PASSWORD, "password2": PASSWORD}
        next_field = re.search(r'name="next" value="([^"]*)"', page.text)
        assert next_field is not None
        response = client.post(
            "/accounts/signup/",
            data={**form, "next": next_field.group(1)},
            headers={"X-CSRFToken": client.cookies["csrftoken"]},
        )
        assert response.status_code == 302
        assert response.headers["location"] == "/"
        assert "Rooms</h1>" in client.get("/").text


def test_creating_a_room_never_confirms_a_private_room_exists(server: LiveServer) -> None:
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    private = alice.create_room("Plans", private=True)
    assert private != "plans"
    # Bob names a room as Alice's private one, or as its slug: nothing tells him it exists.
    created = bob.api("POST", "/api/rooms/", {"name": "Plans"})
    assert created.status_code == 201
    assert created.json()["slug"] == "plans"
    guessed = bob.api("POST", "/api/rooms/", {"name": private})
    assert guessed.status_code == 400
    assert guessed.json()["error"] == "This name cannot be used for a new room: pick another."
    assert private not in guessed.text
    # Alice, who may see it, is told plainly.
    mine = alice.api("POST", "/api/rooms/", {"name": private})
    assert "exists already" in mine.json()["error"]
    alice.close()
    bob.close()
