"""Unread counts and mentions, read from real streams (each user's own channel); edits
through the admin marked as edits; sign-up lands where it should; taken private slugs
are never confirmed."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client

from chat.mentions import mentioned
from chat.models import Membership, Message
from tests.chat_accounts import PASSWORD, ChatAccount
from tests.clients import StreamReader, open_stream
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def unread_events(reader: StreamReader) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in reader.of_type("unread")]


async def account(server: LiveServer, name: str) -> ChatAccount:
    return await sync_to_async(ChatAccount)(server.url, name)


def test_mentions_are_found_as_people_write_them() -> None:
    text = "@bob look, @carol.smith. mail me at x@example.com, @bob again, @-dash @"
    assert mentioned(text) == ["bob", "carol.smith", "-dash"]


async def test_unread_counts_rise_live_and_clear_when_read(server: LiveServer) -> None:
    alice, bob = await account(server, "alice"), await account(server, "bob")
    await sync_to_async(bob.say)("lobby", "bob is a member now")
    async with (
        bob.stream_client() as client,
        open_stream(client, "/events/me/") as seen,
    ):
        await seen.wait_for(lambda r: bool(r.last_id))
        await sync_to_async(alice.say)("lobby", "one")
        await sync_to_async(alice.say)("lobby", "two, for @bob")
        await seen.wait_for(lambda r: len(unread_events(r)) == 2)
        assert unread_events(seen) == [
            {"room": "lobby", "unread": 1, "mentions": 0},
            {"room": "lobby", "unread": 2, "mentions": 1},
        ]
        # His own messages never count; reading the room clears it, on every page.
        read = await sync_to_async(bob.api)("POST", "/api/rooms/lobby/read/", {})
        assert read.status_code == 204
        await seen.wait_for(lambda r: len(unread_events(r)) == 3)
        assert unread_events(seen)[-1] == {"room": "lobby", "unread": 0, "mentions": 0}
        # A deleted unread message leaves the count.
        third = await sync_to_async(alice.say)("lobby", "three")
        await seen.wait_for(lambda r: len(unread_events(r)) == 4)
        url = f"/api/rooms/lobby/messages/{third['id']}/"
        assert (await sync_to_async(alice.api)("DELETE", url)).status_code == 204
        await seen.wait_for(lambda r: len(unread_events(r)) == 5)
        assert [e["unread"] for e in unread_events(seen)[-2:]] == [1, 0]
    # The room list renders the count as it is now: nothing unread.
    page = await sync_to_async(bob.client.get)("/")
    assert 'data-unread-for="lobby" hidden' in page.text
    alice.close()
    bob.close()


async def test_opening_a_room_marks_it_read_and_renders_the_counts(server: LiveServer) -> None:
    alice, bob = await account(server, "alice"), await account(server, "bob")
    await sync_to_async(bob.say)("random", "bob joins random")
    await sync_to_async(alice.say)("random", "hello @bob")
    await sync_to_async(alice.say)("random", "are you there?")
    index = await sync_to_async(bob.client.get)("/")
    badge = re.search(
        r'<span class="unread mentioned" data-unread-for="random">(.*?)</span>\s*</li>',
        index.text,
        flags=re.DOTALL,
    )
    assert badge is not None, index.text
    assert "2 unread, 1 mentioning you" in badge.group(1)
    async with bob.stream_client() as client, open_stream(client, "/events/me/") as seen:
        await seen.wait_for(lambda r: bool(r.last_id))
        page = await sync_to_async(bob.client.get)("/rooms/random/")
        assert page.status_code == 200
        await seen.wait_for(lambda r: bool(unread_events(r)))
        assert unread_events(seen) == [{"room": "random", "unread": 0, "mentions": 0}]
    # The page knows where the unread messages started (for its divider).
    found = re.search(r'id="chat-config"[^>]*>(.*?)</script>', page.text)
    assert found is not None
    config = json.loads(found.group(1))
    first = await sync_to_async(Message.objects.get)(text="bob joins random")
    assert config["lastReadId"] == first.id
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
    assert 'data-unread-for="lobby" hidden' in bob.client.get("/").text
    alice.close()
    bob.close()


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
