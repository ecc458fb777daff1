"""Direct conversations over real HTTP: started from a name or a member list, one per set
of people, private by construction (404 to everyone else, exactly as a room that does not
exist), members fixed, and their people told on their own channels at once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from chat.models import Membership, Room
from pgsse.models import Event
from tests.attachment_files import image
from tests.chat_accounts import ChatAccount
from tests.clients import StreamReader, open_stream
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def of_type(reader: StreamReader, event_type: str) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in reader.of_type(event_type)]


def error_of(response: Any) -> str:
    assert response.headers["content-type"] == "application/json", response.text
    message: str = response.json()["error"]
    return message


def test_one_conversation_per_set_of_people(server: LiveServer) -> None:
    alice, bob, carol = (ChatAccount(server.url, name) for name in ("alice", "bob", "carol"))
    first = alice.api("POST", "/api/direct/", {"users": ["bob"]})
    assert first.status_code == 201, first.text
    pair = first.json()
    assert pair["direct"] is True
    assert pair["private"] is True
    # Named after the others, as each reads it; its slug is random, not a name.
    assert pair["name"] == "bob"
    assert pair["slug"].startswith("dm-")
    assert "bob" not in pair["slug"]
    assert [p["user"] for p in pair["people"]] == ["bob", "alice"]
    # Bob starting it, or alice again (with an @, spaces), leads to the same one.
    again = bob.api("POST", "/api/direct/", {"users": ["@alice "]})
    assert again.status_code == 200
    assert (again.json()["slug"], again.json()["name"]) == (pair["slug"], "alice")
    assert alice.api("POST", "/api/direct/", {"users": "bob"}).json()["slug"] == pair["slug"]
    # Three people: another conversation; named after the two others.
    group = carol.api("POST", "/api/direct/", {"users": ["bob", "alice", "carol"]})
    assert group.status_code == 201
    assert group.json()["name"] == "alice, bob"
    assert group.json()["slug"] != pair["slug"]
    # With oneself only: notes to self.
    notes = alice.api("POST", "/api/direct/", {"users": ["alice"]})
    assert (notes.status_code, notes.json()["name"]) == (201, "alice (you)")
    assert Room.objects.filter(direct=True).count() == 3
    assert set(
        Membership.objects.filter(room__slug=pair["slug"]).values_list("user__username", flat=True)
    ) == {"alice", "bob"}
    for account in (alice, bob, carol):
        account.close()


def test_refusals_say_what_is_wrong(server: LiveServer, settings: Any) -> None:
    settings.CHAT_DIRECT_MAX_PEOPLE = 3
    alice = ChatAccount(server.url, "alice")
    for name in ("bob", "carol", "dave"):
        User.objects.create_user(name)
    cases = [
        ({"users": ["nobody"]}, 404, "There is no user called 'nobody'"),
        ({"users": ["bob", "carol", "dave"]}, 400, "at most 3 people, you included"),
        ({"users": []}, 400, "Name someone to talk to"),
        ({"users": [1]}, 400, "Name the people to talk to"),
        ({}, 400, "Name the people to talk to"),
        ({"users": ["bo\x00b"]}, 400, "NUL"),
    ]
    for body, status, says in cases:
        response = alice.api("POST", "/api/direct/", body)
        assert response.status_code == status, (body, response.text)
        assert says in error_of(response)
    # A deactivated account is nobody to talk to.
    User.objects.filter(username="bob").update(is_active=False)
    assert alice.api("POST", "/api/direct/", {"users": ["bob"]}).status_code == 404
    # Not logged in: 401; without the CSRF token: 403.
    anonymous = ChatAccount.__new__(ChatAccount)
    anonymous.client = alice.client.__class__(base_url=server.url)
    assert anonymous.client.post("/api/direct/", json={"users": ["carol"]}).status_code == 401
    assert alice.client.post("/api/direct/", json={"users": ["carol"]}).status_code == 403
    anonymous.client.close()
    assert not Room.objects.filter(direct=True).exists()
    alice.close()


def test_starting_conversations_is_rate_limited(server: LiveServer, settings: Any) -> None:
    settings.CHAT_RATE_LIMITS = {"direct": (2, 30, 60.0)}
    alice = ChatAccount(server.url, "alice")
    User.objects.create_user("bob")
    statuses = [alice.api("POST", "/api/direct/", {"users": ["bob"]}).status_code for _ in range(3)]
    assert statuses == [201, 200, 429]
    alice.close()


def test_a_conversation_is_private_by_construction(server: LiveServer) -> None:
    alice, bob, mallory = (ChatAccount(server.url, n) for n in ("alice", "bob", "mallory"))
    slug = alice.api("POST", "/api/direct/", {"users": ["bob"]}).json()["slug"]
    sent = alice.say(slug, "just between us")
    assert bob.client.get(f"/rooms/{slug}/").status_code == 200
    assert bob.api("GET", f"/api/rooms/{slug}/messages/").json()["messages"][0]["id"] == sent["id"]
    # Anyone else: exactly what a room that does not exist answers, everywhere.
    for path in (slug, "dm-doesnotexist"):
        page = mallory.client.get(f"/rooms/{path}/")
        assert page.status_code == 404
        for method, url, body in [
            ("GET", f"/api/rooms/{path}/messages/", None),
            ("POST", f"/api/rooms/{path}/messages/", {"text": "let me in"}),
            ("GET", f"/api/rooms/{path}/", None),
            ("GET", f"/api/rooms/{path}/members/", None),
            ("POST", f"/api/rooms/{path}/members/", {"username": "mallory"}),
            ("POST", f"/api/rooms/{path}/read/", {}),
            ("POST", f"/api/rooms/{path}/typing/", {}),
            ("GET", f"/rooms/{path}/events/", None),
            ("GET", f"/rooms/{path}/settings/", None),
        ]:
            response = mallory.api(method, url, body)
            assert response.status_code == 404, (method, url, response.text)
            if url.startswith("/api/"):
                assert error_of(response) == f"There is no room {path!r} (or it is private)."
    # Nor does it show among anyone else's rooms.
    lists = mallory.api("GET", "/api/rooms/").json()
    assert all(r["slug"] != slug for group in lists.values() for r in group)
    assert slug not in mallory.client.get("/").text
    for account in (alice, bob, mallory):
        account.close()


def test_its_people_are_fixed(server: LiveServer) -> None:
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    User.objects.create_user("carol")
    slug = alice.api("POST", "/api/direct/", {"users": ["bob"]}).json()["slug"]
    invited = alice.api("POST", f"/api/rooms/{slug}/members/", {"username": "carol"})
    assert invited.status_code == 400
    assert "start another one" in error_of(invited)
    assert alice.api("DELETE", f"/api/rooms/{slug}/members/bob/").status_code == 403
    left = bob.form(f"/rooms/{slug}/leave/")
    assert left.status_code == 302
    assert "cannot be left" in bob.client.get(left.headers["location"]).text
    renamed = alice.api("PATCH", f"/api/rooms/{slug}/", {"name": "Ours"})
    assert renamed.status_code == 400
    assert "no owner and no settings" in error_of(renamed)
    assert alice.api("DELETE", f"/api/rooms/{slug}/").status_code == 400
    assert Membership.objects.filter(room__slug=slug).count() == 2
    # Nobody owns it: nobody deletes another's message.
    sent = bob.say(slug, "mine")
    assert alice.api("DELETE", f"/api/rooms/{slug}/messages/{sent['id']}/").status_code == 403
    alice.close()
    bob.close()


def test_a_conversation_has_what_a_room_has_for_its_people_only(
    server: LiveServer, settings: Any
) -> None:
    """Files, replies and threads, reactions, @-names and search work in a direct
    conversation as in a room, for its people; to anyone else each is a 404, and search
    never finds its messages."""
    settings.CHAT_RATE_LIMITS = {"search": (1000, 1000, 10.0)}
    alice, bob, mallory = (ChatAccount(server.url, n) for n in ("alice", "bob", "mallory"))
    assert bob.api("PATCH", "/api/me/", {"display_name": "Bobby"}).status_code == 200
    slug = alice.api("POST", "/api/direct/", {"users": ["bob"]}).json()["slug"]
    posted = alice.client.post(
        f"/api/rooms/{slug}/messages/",
        data={"text": "the quarterly zeppelin figures"},
        files=[("file", ("figures.png", image(), "image/png"))],
        headers={"X-CSRFToken": alice.csrf_token},
    )
    assert posted.status_code == 201, posted.text
    first = posted.json()
    [attached] = first["attachments"]
    reply = bob.api(
        "POST", f"/api/rooms/{slug}/messages/", {"text": "thanks", "reply_to": first["id"]}
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["reply_to"]["id"] == first["id"]
    reactions = f"/api/rooms/{slug}/messages/{first['id']}/reactions/"
    reacted = bob.api("POST", reactions, {"emoji": "👍"})
    assert reacted.status_code == 201, reacted.text
    thread = alice.api("GET", f"/api/rooms/{slug}/messages/{first['id']}/thread/").json()
    assert [each["text"] for each in thread["replies"]] == ["thanks"]
    assert [(r["emoji"], r["users"]) for r in thread["root"]["reactions"]] == [("👍", ["bob"])]
    assert bob.client.get(attached["url"]).content == image()
    assert bob.client.get(attached["image"]["preview"]).status_code == 200
    assert alice.api("GET", f"/api/rooms/{slug}/people/?prefix=b").json()["people"] == ["bob"]
    # Its people find its messages, the conversation named as each reads it.
    for account, name in ((alice, "Bobby"), (bob, "alice")):
        answer = account.client.get("/api/search/", params={"q": "zeppelin"}).json()
        [result] = answer["results"]
        assert (result["id"], result["room"], result["room_name"]) == (first["id"], slug, name)
    page = alice.client.get("/search/", params={"q": "zeppelin"})
    assert '<span class="result-room">Bobby</span>' in page.text
    # Anyone else: nothing, whichever way they ask.
    for params in ({"q": "zeppelin"}, {"q": f"zeppelin in:{slug}"}, {"q": "from:alice"}):
        answer = mallory.client.get("/api/search/", params=params)
        assert (answer.status_code, answer.json()["results"]) == (200, []), params
    outsider = mallory.client.get("/search/", params={"q": "zeppelin"}).text
    assert 'id="search-empty"' in outsider
    assert "figures" not in outsider
    for method, url, body in [
        ("GET", attached["url"], None),
        ("GET", attached["image"]["preview"], None),
        ("GET", f"/api/rooms/{slug}/messages/{first['id']}/", None),
        ("GET", f"/api/rooms/{slug}/messages/{first['id']}/thread/", None),
        ("POST", reactions, {"emoji": "👀"}),
        ("DELETE", f"{reactions}%F0%9F%91%8D/", None),
        ("POST", f"/api/rooms/{slug}/messages/", {"text": "hi", "reply_to": first["id"]}),
        ("GET", f"/api/rooms/{slug}/people/?prefix=a", None),
    ]:
        response = mallory.api(method, url, body)
        assert response.status_code == 404, (method, url, response.text)
        assert response.headers["content-type"] == "application/json"
    # Deleting the message deletes its file, for its people too.
    assert alice.api("DELETE", f"/api/rooms/{slug}/messages/{first['id']}/").status_code == 204
    assert bob.client.get(attached["url"]).status_code == 404
    for account in (alice, bob, mallory):
        account.close()


async def test_its_people_are_told_at_once_on_their_own_channels(server: LiveServer) -> None:
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    async with (
        alice.stream_client() as alice_client,
        bob.stream_client() as bob_client,
        open_stream(alice_client, "/events/me/") as alice_seen,
        open_stream(bob_client, "/events/me/") as bob_seen,
    ):
        await alice_seen.wait_for(lambda r: bool(r.last_id))
        await bob_seen.wait_for(lambda r: bool(r.last_id))
        started = await sync_to_async(alice.api)("POST", "/api/direct/", {"users": ["bob"]})
        room = started.json()
        await bob_seen.wait_for(lambda r: bool(r.of_type("invited")))
        await alice_seen.wait_for(lambda r: bool(r.of_type("joined")))
        people = [{"user": "alice", "name": "alice"}, {"user": "bob", "name": "bob"}]
        entry = {
            "room_id": room["id"],
            "room": room["slug"],
            "name": "alice, bob",
            "topic": "",
            "private": True,
            "direct": True,
            "owner": None,
            "people": people,
        }
        assert of_type(bob_seen, "invited") == [{**entry, "by": "alice"}]
        assert of_type(alice_seen, "joined") == [entry]
        # Opening it again tells nobody anything.
        before = await sync_to_async(Event.objects.count)()
        await sync_to_async(bob.api)("POST", "/api/direct/", {"users": ["alice"]})
        assert await sync_to_async(Event.objects.count)() == before
    alice.close()
    bob.close()


def test_the_pages_start_a_conversation_from_a_name_or_a_member_list(server: LiveServer) -> None:
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    bob.say("lobby", "bob is a member")
    # The member list of #Lobby has a Message button for bob (none for alice herself).
    page = alice.client.get("/rooms/lobby/").text
    assert 'aria-label="Message bob directly"' in page
    assert 'aria-label="Message alice directly"' not in page
    started = alice.form("/direct/", users="bob")
    assert started.status_code == 302
    slug = Room.objects.get(direct=True).slug
    assert started.headers["location"] == f"/rooms/{slug}/"
    # The sidebar's form takes names separated by commas or spaces.
    User.objects.create_user("carol")
    group = alice.form("/direct/", users="bob, carol")
    assert group.status_code == 302
    conversation = alice.client.get(group.headers["location"])
    assert conversation.status_code == 200
    assert "<title>bob, carol · pgsse chat</title>" in conversation.text
    # A name that is nobody's: back where the form was, saying so.
    refused = alice.client.post(
        "/direct/",
        data={"csrfmiddlewaretoken": alice.csrf_token, "users": "nobody"},
        headers={"Referer": f"{server.url}/rooms/lobby/"},
    )
    assert refused.headers["location"] == f"{server.url}/rooms/lobby/"
    assert "There is no user called &#x27;nobody&#x27;" in alice.client.get("/rooms/lobby/").text
    alice.close()
    bob.close()


def test_people_are_named_without_minding_their_case(server: LiveServer) -> None:
    """Sign-up tells no two usernames apart by case alone; nor does naming people."""
    alice, bob, carol = (ChatAccount(server.url, name) for name in ("alice", "bob", "carol"))
    pair = alice.api("POST", "/api/direct/", {"users": ["BOB"]})
    assert pair.status_code == 201, pair.text
    assert pair.json()["name"] == "bob"
    again = alice.api("POST", "/api/direct/", {"users": ["Bob", "bob"]})
    assert again.json()["slug"] == pair.json()["slug"]
    assert alice.api("POST", "/api/direct/", {"users": ["ALICE"]}).json()["name"] == "alice (you)"
    slug = alice.create_room("Plans", private=True)
    invited = alice.form(f"/rooms/{slug}/invite/", username="Carol")
    assert invited.status_code == 302
    assert Membership.objects.filter(room__slug=slug, user__username="carol").exists()
    alice.form(f"/rooms/{slug}/invite/", username="BOB")
    handed = alice.api("PATCH", f"/api/rooms/{slug}/", {"owner": "Bob"})
    assert (handed.status_code, handed.json()["owner"]) == (200, "bob")
    assert bob.form(f"/rooms/{slug}/remove/", username="CAROL").status_code == 302
    assert not Membership.objects.filter(room__slug=slug, user__username="carol").exists()
    for account in (alice, bob, carol):
        account.close()
