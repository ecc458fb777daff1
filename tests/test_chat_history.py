"""History pages around a message (where search results and replies lead) and after one,
and the room page opened on a message; the mentions' autocomplete."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chat.models import Membership, Message, Room
from tests.chat_accounts import ChatAccount
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def page_config(html: str) -> dict[str, Any]:
    found = re.search(r'id="chat-config"[^>]*>(.*?)</script>', html)
    assert found is not None
    config: dict[str, Any] = json.loads(found.group(1))
    return config


def test_pages_around_and_after_a_message(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    lobby = Room.objects.get(slug="lobby")
    Message.objects.bulk_create(
        [Message(room=lobby, author_name="alice", text=f"m{n}") for n in range(200)]
    )
    ids = list(Message.objects.order_by("id").values_list("id", flat=True))
    target = ids[100]
    around = alice.api("GET", f"/api/rooms/lobby/messages/?around={target}&limit=10").json()
    assert [m["id"] for m in around["messages"]] == ids[95:105]
    assert (around["has_more"], around["has_newer"]) == (True, True)
    after = alice.api("GET", f"/api/rooms/lobby/messages/?after={ids[189]}&limit=10").json()
    assert [m["id"] for m in after["messages"]] == ids[190:]
    assert (after["has_more"], after["has_newer"]) == (True, False)
    before = alice.api("GET", f"/api/rooms/lobby/messages/?before={ids[10]}").json()
    assert [m["id"] for m in before["messages"]] == ids[:10]
    assert (before["has_more"], before["has_newer"]) == (False, True)
    newest = alice.api("GET", "/api/rooms/lobby/messages/").json()
    assert newest["has_newer"] is False
    # A deleted message's place still leads somewhere: the messages around where it was.
    Message.objects.filter(id=target).delete()
    gone = alice.api("GET", f"/api/rooms/lobby/messages/?around={target}&limit=4").json()
    assert [m["id"] for m in gone["messages"]] == [ids[98], ids[99], ids[101], ids[102]]
    both = alice.api("GET", f"/api/rooms/lobby/messages/?around={target}&before={target}")
    assert both.status_code == 400
    # The room page opened on a message: the history around it, and read up to there.
    alice.say("lobby", "joining")
    Membership.objects.filter(room=lobby).update(last_read_id=ids[0])
    html = alice.client.get(f"/rooms/lobby/?message={ids[50]}").text
    config = page_config(html)
    assert (config["target"], config["hasNewer"], config["hasMore"]) == (ids[50], True, True)
    read = Membership.objects.get(room=lobby).last_read_id
    assert ids[50] < read < ids[-1]
    assert page_config(alice.client.get("/rooms/lobby/?message=x").text)["target"] is None
    alice.close()


def test_mention_autocomplete_offers_the_rooms_members(server: LiveServer, settings: Any) -> None:
    settings.CHAT_RATE_LIMITS = {"signup": (None, 100, 600.0)}
    names = ["alice", "alan", "albert", "bob", "Alina"]
    people = {name: ChatAccount(server.url, name) for name in names}
    for name in names:
        people[name].say("lobby", f"{name} is here")
    people["albert"].say("lobby", "albert again")
    answer = people["alice"].client.get("/api/rooms/lobby/people/", params={"prefix": "al"})
    # Recent speakers first, never the asker, case folded.
    assert answer.json() == {"people": ["albert", "Alina", "alan"]}
    assert people["bob"].client.get("/api/rooms/lobby/people/?prefix=%").json()["people"] == []
    assert len(people["bob"].client.get("/api/rooms/lobby/people/").json()["people"]) == 4
    # A private room: its members, to its members only.
    slug = people["alice"].create_room("Plans", private=True)
    people["alice"].form(f"/rooms/{slug}/invite/", username="alan")
    assert people["alan"].client.get(f"/api/rooms/{slug}/people/").json()["people"] == ["alice"]
    assert people["bob"].client.get(f"/api/rooms/{slug}/people/").status_code == 404
    assert (
        people["bob"].client.get("/api/rooms/lobby/people/?prefix=" + "x" * 151).status_code == 400
    )
    people["bob"].client.cookies.clear()
    assert people["bob"].client.get("/api/rooms/lobby/people/").status_code == 401
    for account in people.values():
        account.close()
