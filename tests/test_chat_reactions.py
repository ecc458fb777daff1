"""Reactions over real HTTP: add and take back, once per user and emoji, the summary in
one event per change (in commit order), who may react, what an emoji is, and the log
forgetting a deleted message's reactions."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from chat import reactions
from chat.models import Reaction, Room
from pgsse.models import Event
from tests.chat_accounts import ChatAccount
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def reaction_events(channel: str) -> list[dict[str, Any]]:
    rows = Event.objects.filter(channel=channel, type="reaction").order_by("seq")
    return [json.loads(data) for data in rows.values_list("data", flat=True)]


def test_reactions_add_and_go_once_per_user_and_emoji(server: LiveServer) -> None:
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    message = alice.say("lobby", "ship it?")
    url = f"/api/rooms/lobby/messages/{message['id']}/reactions/"
    added = bob.api("POST", url, {"emoji": "👍"})
    assert added.status_code == 201
    assert added.json()["reactions"] == [
        {"emoji": "👍", "count": 1, "users": ["bob"], "mine": True}
    ]
    assert bob.api("POST", url, {"emoji": "👍"}).status_code == 200  # there already
    both = alice.api("POST", url, {"emoji": "👍"}).json()["reactions"]
    assert both == [{"emoji": "👍", "count": 2, "users": ["bob", "alice"], "mine": True}]
    alice.api("POST", url, {"emoji": "🎉"})
    # History carries the summary, with the reader's own marked.
    page = bob.api("GET", "/api/rooms/lobby/messages/").json()["messages"][0]["reactions"]
    assert [(r["emoji"], r["count"], r["mine"]) for r in page] == [
        ("👍", 2, True),
        ("🎉", 1, False),
    ]
    taken = bob.api("DELETE", f"{url}{quote('👍')}/")
    assert taken.status_code == 200
    assert taken.json()["reactions"][0] == {
        "emoji": "👍",
        "count": 1,
        "users": ["alice"],
        "mine": False,
    }
    assert bob.api("DELETE", f"{url}{quote('👍')}/").json()["changed"] is False
    # One event per change (none for what changed nothing), the whole summary each time.
    channel = Room.objects.get(slug="lobby").channel
    changes = reaction_events(channel)
    assert [(e["user"], e["emoji"], e["added"]) for e in changes] == [
        ("bob", "👍", True),
        ("alice", "👍", True),
        ("alice", "🎉", True),
        ("bob", "👍", False),
    ]
    assert [r["count"] for r in changes[-1]["reactions"]] == [1, 1]
    assert "mine" not in changes[-1]["reactions"][0]
    # An edit's event carries the reactions as they are.
    alice.api("PATCH", f"/api/rooms/lobby/messages/{message['id']}/", {"text": "shipped"})
    updated = Event.objects.filter(channel=channel, type="message_updated").get()
    assert [r["emoji"] for r in json.loads(updated.data)["reactions"]] == ["👍", "🎉"]
    # Deleting the message takes its reactions with it, from the log too.
    alice.api("DELETE", f"/api/rooms/lobby/messages/{message['id']}/")
    assert not Reaction.objects.exists()
    assert reaction_events(channel) == []
    alice.close()
    bob.close()


def test_who_may_react_and_with_what(server: LiveServer, settings: Any) -> None:
    settings.CHAT_RATE_LIMITS = {"reaction": (1000, 1000, 10.0)}
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    slug = alice.create_room("Plans", private=True)
    secret = alice.say(slug, "secret")
    assert (
        bob.api(
            "POST", f"/api/rooms/{slug}/messages/{secret['id']}/reactions/", {"emoji": "👍"}
        ).status_code
        == 404
    )
    message = alice.say("lobby", "react to me")
    url = f"/api/rooms/lobby/messages/{message['id']}/reactions/"
    for bad in ("a", "👍 ", "", "1", ":+1:", "<b>", 5, None, "👍" * 11):
        answer = bob.api("POST", url, {"emoji": bad})
        assert answer.status_code == 400, bad
        assert answer.json()["error"]
    for good in ("❤️", "👍🏽", "🇫🇷", "👨‍👩‍👧", "★"):
        assert bob.api("POST", url, {"emoji": good}).status_code == 201, good
    assert (
        bob.api("POST", "/api/rooms/lobby/messages/999999/reactions/", {"emoji": "👍"}).status_code
        == 404
    )
    # At most MAX_KINDS different emoji on one message; more of one already there is fine.
    symbols = [chr(0x2630 + n) for n in range(40)]  # none of those above
    for symbol in symbols[: reactions.MAX_KINDS - 5]:
        assert alice.api("POST", url, {"emoji": symbol}).status_code == 201
    refused = alice.api("POST", url, {"emoji": symbols[reactions.MAX_KINDS]})
    assert refused.status_code == 400
    assert "at most" in refused.json()["error"]
    assert alice.api("POST", url, {"emoji": "❤️"}).status_code == 201
    # Without a session's CSRF token, or logged out: refused.
    assert bob.client.post(url, json={"emoji": "👍"}).status_code == 403
    bob.client.cookies.clear()
    assert bob.client.post(url, json={"emoji": "👍"}).status_code == 401
    alice.close()
    bob.close()


def test_reactions_are_rate_limited(server: LiveServer, settings: Any) -> None:
    settings.CHAT_RATE_LIMITS = {"reaction": (2, 100, 10.0)}
    alice = ChatAccount(server.url, "alice")
    message = alice.say("lobby", "react")
    url = f"/api/rooms/lobby/messages/{message['id']}/reactions/"
    assert [alice.api("POST", url, {"emoji": e}).status_code for e in "☀☁☂"] == [201, 201, 429]
    assert Reaction.objects.count() == 2
    alice.close()
