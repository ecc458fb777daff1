"""Room settings over real HTTP: its owner renames a room, sets its topic, hands it over or
deletes it, from the settings page or the API; everyone else is refused; every change
reaches open pages through the directory channel (public rooms) or the members' own
channels (private rooms). Invitations refuse the owner and existing members."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from chat.models import Membership, Message, Room
from pgsse.models import Event
from tests.chat_accounts import ChatAccount
from tests.clients import open_stream
from tests.servers import LiveServer
from tests.test_chat_direct import error_of, of_type

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_owner_renames_sets_the_topic_and_hands_over(server: LiveServer) -> None:
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    slug = alice.create_room("Plans")
    changed = alice.api("PATCH", f"/api/rooms/{slug}/", {"name": "  Été   2027 ", "topic": "Où?"})
    assert changed.status_code == 200, changed.text
    data = changed.json()
    # The address stays: links and open pages stay good.
    assert (data["slug"], data["name"], data["topic"], data["owner"]) == (
        slug,
        "Été 2027",
        "Où?",
        "alice",
    )
    assert bob.api("GET", f"/api/rooms/{slug}/").json()["name"] == "Été 2027"
    # Only to a member.
    refused = alice.api("PATCH", f"/api/rooms/{slug}/", {"owner": "bob"})
    assert refused.status_code == 404
    assert "bob is not a member of #Été 2027: invite them first" in error_of(refused)
    bob.say(slug, "bob joins by posting")
    handed = alice.api("PATCH", f"/api/rooms/{slug}/", {"owner": "bob"})
    assert (handed.status_code, handed.json()["owner"]) == (200, "bob")
    # Alice stays a member, and may now leave; bob may not.
    assert Membership.objects.filter(room__slug=slug, user__username="alice").exists()
    assert alice.api("PATCH", f"/api/rooms/{slug}/", {"topic": "x"}).status_code == 403
    bob_leaves = bob.form(f"/rooms/{slug}/leave/")
    assert (
        "hand it over to another member first"
        in bob.client.get(bob_leaves.headers["location"]).text
    )
    assert alice.form(f"/rooms/{slug}/leave/").status_code == 302
    assert not Membership.objects.filter(room__slug=slug, user__username="alice").exists()
    alice.close()
    bob.close()


def test_refusals_say_what_is_wrong(server: LiveServer) -> None:
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    slug = alice.create_room("Plans")
    alice.create_room("Other")
    cases = [
        ({"name": ""}, 400, "A room needs a name"),
        ({"name": "x" * 81}, 400, "at most 80 characters"),
        ({"name": 3}, 400, "must be text"),
        ({"name": "other"}, 400, "There is a public room called 'other' already"),
        ({"name": "ÖTHER"}, 400, "already"),
        ({"topic": "y" * 251}, 400, "at most 250 characters"),
        ({"topic": "nul\x00"}, 400, "NUL"),
        ({"owner": "alice"}, 400, "You own this room already"),
        ({"owner": "nobody"}, 404, "nobody is not a member"),
        ({"colour": "red"}, 400, "Unknown settings ['colour']"),
        ({}, 400, "Send the settings to change"),
    ]
    for body, status, says in cases:
        response = alice.api("PATCH", f"/api/rooms/{slug}/", body)
        assert response.status_code == status, (body, response.text)
        assert says in error_of(response), (body, response.text)
    # Nobody but the owner: 403, saying so; and Room settings 403 as a page.
    for response in (
        bob.api("PATCH", f"/api/rooms/{slug}/", {"name": "Mine"}),
        bob.api("DELETE", f"/api/rooms/{slug}/"),
    ):
        assert response.status_code == 403
        assert error_of(response) == "Only the room's owner may change its settings."
    page = bob.client.get(f"/rooms/{slug}/settings/")
    assert page.status_code == 403
    assert "Only the owner of #Plans changes its settings." in page.text
    assert Room.objects.get(slug=slug).name == "Plans"
    alice.close()
    bob.close()


def test_settings_are_rate_limited(server: LiveServer, settings: Any) -> None:
    settings.CHAT_RATE_LIMITS = {"settings": (2, 30, 60.0)}
    alice = ChatAccount(server.url, "alice")
    slug = alice.create_room("Plans")
    statuses = [
        alice.api("PATCH", f"/api/rooms/{slug}/", {"topic": str(n)}).status_code for n in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert Room.objects.get(slug=slug).topic == "1"
    alice.close()


def test_the_settings_page_renames_hands_over_and_deletes(server: LiveServer) -> None:
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    slug = alice.create_room("Plans", private=True)
    page = alice.client.get(f"/rooms/{slug}/settings/")
    assert page.status_code == 200
    assert "Settings of Plans" in page.text
    assert 'id="no-heirs"' in page.text  # nobody to hand it over to yet
    saved = alice.form(f"/rooms/{slug}/settings/", action="rename", name="Secret plans", topic="Q3")
    assert saved.headers["location"] == f"/rooms/{slug}/"
    room_page = alice.client.get(saved.headers["location"]).text
    assert "<title>Secret plans · pgsse chat</title>" in room_page
    assert 'id="room-topic">Q3</p>' in room_page
    assert alice.form(f"/rooms/{slug}/invite/", username="bob").status_code == 302
    handed = alice.form(f"/rooms/{slug}/settings/", action="hand_over", owner="bob")
    assert "bob owns Secret plans now." in alice.client.get(handed.headers["location"]).text
    assert Room.objects.get(slug=slug).owner == User.objects.get(username="bob")
    # Deleting asks for the box to be ticked.
    bob.say(slug, "a message that goes with the room")
    unticked = bob.form(f"/rooms/{slug}/settings/", action="delete")
    assert unticked.status_code == 200
    assert "Tick the box to confirm" in unticked.text
    deleted = bob.form(f"/rooms/{slug}/settings/", action="delete", confirm="yes")
    assert deleted.headers["location"] == "/"
    assert "Secret plans was deleted, with its messages." in bob.client.get("/").text
    assert not Room.objects.filter(slug=slug).exists()
    assert not Message.objects.filter(room__slug=slug).exists()
    assert alice.client.get(f"/rooms/{slug}/").status_code == 404
    alice.close()
    bob.close()


async def test_changes_reach_every_page_on_the_right_channel(server: LiveServer) -> None:
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    carol = await sync_to_async(ChatAccount)(server.url, "carol")
    secret = await sync_to_async(alice.create_room)("Plans", private=True)
    await sync_to_async(alice.form)(f"/rooms/{secret}/invite/", username="bob")
    secret_pk = await sync_to_async(lambda: Room.objects.get(slug=secret).pk)()
    async with (
        bob.stream_client() as bob_client,
        carol.stream_client() as carol_client,
        open_stream(bob_client, "/events/me/") as bob_seen,
        open_stream(carol_client, "/events/me/") as carol_seen,
    ):
        await bob_seen.wait_for(lambda r: bool(r.last_id))
        await carol_seen.wait_for(lambda r: bool(r.last_id))
        # A new public room, renamed: everyone hears of both on the directory channel.
        public = await sync_to_async(alice.create_room)("Cafe")
        public_pk = await sync_to_async(lambda: Room.objects.get(slug=public).pk)()
        await sync_to_async(alice.api)("PATCH", f"/api/rooms/{public}/", {"name": "Café"})
        await carol_seen.wait_for(lambda r: len(r.of_type("room")) == 2)
        expected = {
            "room_id": public_pk,
            "room": public,
            "name": "Cafe",
            "topic": "",
            "private": False,
            "direct": False,
            "owner": "alice",
        }
        assert of_type(carol_seen, "room") == [expected, {**expected, "name": "Café"}]
        # A private room's change goes to its members only.
        await sync_to_async(alice.api)("PATCH", f"/api/rooms/{secret}/", {"topic": "shh"})
        await bob_seen.wait_for(lambda r: any(e["private"] for e in of_type(r, "room")))
        changed = [e for e in of_type(bob_seen, "room") if e["private"]]
        assert changed == [
            {
                **expected,
                "room_id": secret_pk,
                "room": secret,
                "name": "Plans",
                "topic": "shh",
                "private": True,
            }
        ]
        # Deleted: public ones on the directory, private ones to their members.
        await sync_to_async(alice.api)("DELETE", f"/api/rooms/{public}/")
        await sync_to_async(alice.api)("DELETE", f"/api/rooms/{secret}/")
        await bob_seen.wait_for(lambda r: len(r.of_type("room_gone")) == 2)
        assert of_type(bob_seen, "room_gone") == [
            {"room_id": public_pk, "room": public, "deleted": True},
            {"room_id": secret_pk, "room": secret, "deleted": True},
        ]
        await carol_seen.wait_for(lambda r: bool(r.of_type("room_gone")))
        assert not any(e["private"] for e in of_type(carol_seen, "room"))
        assert [e["room_id"] for e in of_type(carol_seen, "room_gone")] == [public_pk]
    # Nothing of the private room was ever on the directory channel.
    published = await sync_to_async(
        lambda: [
            json.loads(d)
            for d in Event.objects.filter(channel="directory").values_list("data", flat=True)
        ]
    )()
    assert all(event.get("room_id") != secret_pk for event in published)
    for account in (alice, bob, carol):
        account.close()


def test_invitations_refuse_the_owner_and_members_already_in(server: LiveServer) -> None:
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    slug = alice.create_room("Plans", private=True)
    # The page says one thing, and says it right (issue 22, bug 8).
    myself = alice.form(f"/rooms/{slug}/invite/", username="alice")
    page = alice.client.get(myself.headers["location"]).text
    assert "You are in Plans already: you own it." in page
    assert "may now enter" not in page
    # The API: 201 once, 409 after, 404 for nobody, 403 for members who do not own it.
    first = alice.api("POST", f"/api/rooms/{slug}/members/", {"username": "bob"})
    assert (first.status_code, first.json()) == (201, {"user": "bob", "name": "bob"})
    again = alice.api("POST", f"/api/rooms/{slug}/members/", {"username": "bob"})
    assert again.status_code == 409
    assert error_of(again) == "bob is a member of Plans already."
    assert (
        alice.api("POST", f"/api/rooms/{slug}/members/", {"username": "alice"}).status_code == 409
    )
    assert alice.api("POST", f"/api/rooms/{slug}/members/", {"username": "zed"}).status_code == 404
    assert alice.api("POST", f"/api/rooms/{slug}/members/", {}).status_code == 400
    User.objects.create_user("carol")
    assert bob.api("POST", f"/api/rooms/{slug}/members/", {"username": "carol"}).status_code == 403
    listed = bob.api("GET", f"/api/rooms/{slug}/members/").json()
    assert listed == {
        "members": [{"user": "alice", "name": "alice"}, {"user": "bob", "name": "bob"}],
        "count": 2,
        "owner": "alice",
    }
    alice.close()
    bob.close()
