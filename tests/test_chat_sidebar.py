"""The live sidebar's server side over real HTTP: rooms sorted as people sort, by name (the
slug of a private room nowhere people read), the events that keep every page's sidebar and
member lists live, a stream that starts following a new room carried over from where it
was, display names, and presence that ends with a log-out."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

import pgsse
from chat.collation import fold, sort_key
from chat.models import Membership, Room
from pgsse.models import Event
from pgsse.position import canonical_channels, parse_position
from tests.chat_accounts import ChatAccount
from tests.clients import StreamReader, open_stream
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

#: Names as people write them, in the order people expect them.
SORTED_NAMES = [
    "10 things",
    "apfel",
    "Äpfel",
    "avril",
    "Ete 2025",
    "été 2026",
    "room 9",
    "Room 10",
    "room 010b",
    "Straße",
    "strasse",
    "Zoé",
    "Ωmega",
]


def of_type(reader: StreamReader, event_type: str) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in reader.of_type(event_type)]


def page_config(text: str) -> dict[str, Any]:
    found = re.search(r'id="chat-config"[^>]*>(.*?)</script>', text)
    assert found is not None
    config: dict[str, Any] = json.loads(found.group(1))
    return config


def listed(text: str, list_id: str) -> list[str]:
    """The names of a sidebar list, in page order."""
    found = re.search(rf'<ul id="{list_id}"[^>]*>(.*?)</ul>', text, flags=re.DOTALL)
    assert found is not None, list_id
    return [html.unescape(n) for n in re.findall(r'data-name="([^"]*)"', found.group(1))]


def visible_text(text: str) -> str:
    """What people read of a page: no tags, attributes, scripts or page data."""
    text = re.sub(r"<(script|style|template)\b.*?</\1>", " ", text, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def test_names_sort_as_people_sort() -> None:
    assert sorted(reversed(SORTED_NAMES), key=sort_key) == SORTED_NAMES
    assert fold("Ÿṏür ŒUVRE ß") == "your œuvre ss"


def test_the_sidebar_lists_my_rooms_direct_messages_and_public_rooms_sorted(
    server: LiveServer, settings: Any
) -> None:
    settings.CHAT_RATE_LIMITS = {"room": (100, 100, 60.0)}
    alice = ChatAccount(server.url, "alice")
    # Private ones among them (their slugs differ: "Äpfel" and "apfel" would share one).
    private = {"room 9", "Room 10", "room 010b", "Äpfel"}
    for name in reversed(SORTED_NAMES):
        alice.create_room(name, private=name in private)
    bob = ChatAccount(server.url, "bob")
    alice.api("POST", "/api/direct/", {"users": ["bob"]})
    for path in ("/", "/rooms/lobby/"):
        text = alice.client.get(path).text
        assert listed(text, "my-rooms") == SORTED_NAMES
        assert listed(text, "direct-rooms") == ["bob"]
        public = [n for n in SORTED_NAMES if n not in private]
        assert listed(text, "public-rooms") == sorted([*public, "Lobby", "Random"], key=sort_key)
    # Bob has no room of his own yet; he sees the public ones and the conversation.
    text = bob.client.get("/").text
    assert listed(text, "my-rooms") == []
    assert listed(text, "direct-rooms") == ["alice"]
    assert 'id="my-rooms-empty">' in text
    # The API lists the same, in the same order.
    lists = alice.api("GET", "/api/rooms/").json()
    assert [r["name"] for r in lists["rooms"]] == SORTED_NAMES
    assert [r["name"] for r in lists["direct"]] == ["bob"]
    assert lists["rooms"][0]["unread"] == 0
    alice.close()
    bob.close()


def test_rooms_are_named_and_private_slugs_are_nowhere_people_read(server: LiveServer) -> None:
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    slug = alice.create_room("Plans", private=True)
    alice.form(f"/rooms/{slug}/invite/", username="bob")
    lobby = alice.client.get("/rooms/lobby/").text
    assert "<title>#Lobby · pgsse chat</title>" in lobby  # issue 22, bug 1
    for account, path in [(alice, f"/rooms/{slug}/"), (alice, "/"), (bob, f"/rooms/{slug}/")]:
        text = account.client.get(path).text
        assert slug not in visible_text(text), path
        assert "Plans" in visible_text(text)
    page = alice.client.get(f"/rooms/{slug}/").text
    assert "<title>Plans · pgsse chat</title>" in page
    assert 'placeholder="Message Plans"' in page
    # Notices name it too.
    removed = alice.form(f"/rooms/{slug}/remove/", username="bob")
    assert "bob was removed from Plans." in alice.client.get(removed.headers["location"]).text
    alice.close()
    bob.close()


async def test_memberships_reach_the_room_and_the_users_own_pages(server: LiveServer) -> None:
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    lobby = await sync_to_async(lambda: Room.objects.get(slug="lobby"))()
    async with (
        alice.stream_client() as alice_client,
        bob.stream_client() as bob_client,
        open_stream(alice_client, "/rooms/lobby/events/") as room_seen,
        open_stream(bob_client, "/events/me/") as bob_seen,
    ):
        await room_seen.wait_for(lambda r: bool(r.last_id))
        await bob_seen.wait_for(lambda r: bool(r.last_id))
        # Join, then leave: the room's pages redraw their member list; bob's pages their
        # sidebar.
        await sync_to_async(bob.form)("/rooms/lobby/join/")
        await sync_to_async(bob.form)("/rooms/lobby/leave/")
        await room_seen.wait_for(lambda r: bool(r.of_type("member_left")))
        assert of_type(room_seen, "member_joined") == [
            {"room_id": lobby.pk, "user": "bob", "name": "bob"}
        ]
        assert of_type(room_seen, "member_left") == [{"room_id": lobby.pk, "user": "bob"}]
        await bob_seen.wait_for(lambda r: bool(r.of_type("removed")))
        (joined,) = of_type(bob_seen, "joined")
        assert (joined["room_id"], joined["name"], joined["private"]) == (lobby.pk, "Lobby", False)
        # Joining by posting: the message tells the room's pages, one event still.
        before = await sync_to_async(Event.objects.filter(channel=lobby.channel).count)()
        sent = await sync_to_async(bob.say)("lobby", "posting joins")
        await bob_seen.wait_for(lambda r: len(r.of_type("joined")) == 2)
        events = await sync_to_async(
            lambda: list(Event.objects.filter(channel=lobby.channel).values_list("type", flat=True))
        )()
        assert events[before:] == ["message_created"]
        await room_seen.wait_for(lambda r: bool(r.messages()))
        assert room_seen.messages() == [sent]
        assert len(room_seen.of_type("member_joined")) == 1
    alice.close()
    bob.close()


async def test_a_stream_carries_its_position_over_to_a_new_room(server: LiveServer) -> None:
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    await sync_to_async(alice.say)("random", "alice in random")
    random = await sync_to_async(lambda: Room.objects.get(slug="random").pk)()
    bob_pk = await sync_to_async(lambda: User.objects.get(username="bob").pk)()
    config = page_config((await sync_to_async(bob.client.get)("/")).text)
    assert config["follow"] == []
    # Bob's page missed a directory event before it switches: the carried position keeps
    # it to come; the new room starts from now, its counts read after.
    await sync_to_async(alice.create_room)("Later")
    await sync_to_async(bob.say)("random", "bob joins random")
    await sync_to_async(alice.say)("random", "hi @bob")
    carried = await sync_to_async(bob.api)(
        "GET", f"/api/follow/?follow={random}&last_event_id={config['position']}"
    )
    assert carried.status_code == 200, carried.text
    answer = carried.json()
    assert answer["follow"] == [random]
    assert answer["followQuery"] == f"?follow={random}"
    (count,) = answer["unread"]
    assert (count["room_id"], count["unread"], count["mentions"]) == (random, 1, 1)
    channels = canonical_channels(["directory", f"user:{bob_pk}", f"room:{random}"])
    seqs = parse_position(answer["position"], channels)
    before = parse_position(config["position"], canonical_channels(["directory", f"user:{bob_pk}"]))
    assert seqs["directory"] == before["directory"]
    now = await sync_to_async(pgsse.current_position)([f"room:{random}"])
    assert seqs[f"room:{random}"] == parse_position(now, (f"room:{random}",))[f"room:{random}"]
    async with (
        bob.stream_client() as client,
        open_stream(client, f"/events/me/{answer['followQuery']}", answer["position"]) as seen,
    ):
        await seen.wait_for(lambda r: bool(r.of_type("room")))
        assert [e["name"] for e in of_type(seen, "room")] == ["Later"]
        assert not seen.of_type("reset")
        sent = await sync_to_async(alice.say)("random", "after the switch")
        await seen.wait_for(lambda r: bool(r.messages()))
        assert seen.messages() == [sent]  # nothing before the switch, nothing twice
    # Refused: a position of another set of channels; a room page one may not read.
    wrong = await sync_to_async(bob.api)(
        "GET", f"/api/follow/?from={random}&follow={random}&last_event_id={config['position']}"
    )
    assert wrong.status_code == 400
    secret = await sync_to_async(alice.create_room)("Secret", private=True)
    assert (await sync_to_async(bob.api)("GET", f"/api/follow/?room={secret}")).status_code == 404
    secret_pk = await sync_to_async(lambda: Room.objects.get(slug=secret).pk)()
    # A private room one is not in is left out, as the stream would leave it out.
    sneaky = await sync_to_async(bob.api)(
        "GET", f"/api/follow/?follow={secret_pk}&last_event_id={config['position']}"
    )
    assert (sneaky.status_code, sneaky.json()["follow"], sneaky.json()["unread"]) == (200, [], [])
    alice.close()
    bob.close()


async def test_display_names_reach_every_page_and_message(server: LiveServer) -> None:
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    first = await sync_to_async(alice.say)("lobby", "before the name")
    assert first["name"] == "alice"
    async with bob.stream_client() as client, open_stream(client, "/rooms/lobby/events/") as seen:
        await seen.wait_for(lambda r: bool(r.last_id))
        named = await sync_to_async(alice.api)(
            "PATCH", "/api/me/", {"display_name": " Alice  Liddell "}
        )
        assert named.json() == {"user": "alice", "name": "Alice Liddell"}
        await seen.wait_for(lambda r: bool(r.of_type("person")))
        assert of_type(seen, "person") == [{"user": "alice", "name": "Alice Liddell"}]
        sent = await sync_to_async(alice.say)("lobby", "with the name")
        await seen.wait_for(lambda r: bool(r.messages()))
        assert seen.messages()[0]["name"] == "Alice Liddell"
        assert sent["name"] == "Alice Liddell"
    history = await sync_to_async(bob.api)("GET", "/api/rooms/lobby/messages/")
    assert [m["name"] for m in history.json()["messages"]] == ["Alice Liddell"] * 2
    page = (await sync_to_async(bob.client.get)("/rooms/lobby/")).text
    assert 'data-person="alice">Alice Liddell</span>' in page  # the member list
    # Blank: the username again. Refused: too long, not text; 401 without an account.
    reset = await sync_to_async(alice.api)("PATCH", "/api/me/", {"display_name": ""})
    assert reset.json()["name"] == "alice"
    for body in ({"display_name": "x" * 51}, {"display_name": 5}, {"name": "x"}):
        refused = await sync_to_async(alice.api)("PATCH", "/api/me/", body)
        assert refused.status_code == 400
    assert (await sync_to_async(bob.api)("GET", "/api/me/")).json() == {
        "user": "bob",
        "name": "bob",
    }
    # The profile page sets it too, with the e-mail address for password resets.
    saved = await sync_to_async(alice.form)(
        "/accounts/profile/", display_name="Al", email="alice@example.com"
    )
    assert saved.status_code == 302
    user = await sync_to_async(User.objects.get)(username="alice")
    assert user.email == "alice@example.com"
    profile_page = (await sync_to_async(alice.client.get)("/accounts/profile/")).text
    assert 'value="Al"' in profile_page
    assert 'id="me" href="/accounts/profile/"' in profile_page
    alice.close()
    bob.close()


async def test_a_log_out_leaves_every_room_at_once(server: LiveServer, settings: Any) -> None:
    # Heartbeats and timeouts far apart: only the log-out can take alice out in time.
    settings.CHAT_PRESENCE_TIMEOUT = 600.0
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    for room in ("lobby", "random"):
        await sync_to_async(alice.api)("POST", f"/api/rooms/{room}/presence/", {"tab": "a1"})
    await sync_to_async(bob.api)("POST", "/api/rooms/lobby/presence/", {"tab": "b1"})
    async with bob.stream_client() as client, open_stream(client, "/rooms/lobby/events/") as seen:
        await seen.wait_for(lambda r: bool(r.last_id))
        assert (await sync_to_async(alice.form)("/accounts/logout/")).status_code == 302
        await seen.wait_for(lambda r: bool(r.of_type("presence")))
        assert of_type(seen, "presence")[-1]["users"] == ["bob"]
    assert not await sync_to_async(
        lambda: (
            Membership.objects.none().exists()
            or Room.objects.filter(presences__user__username="alice").exists()
        )
    )()
    alice.close()
    bob.close()
