"""Replies and threads over real HTTP: what a reply answers, its thread's count in the
events (in commit order, also when replies race), the thread view, replies to one's
messages counted as mentions, and a log that forgets the answered text."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import psycopg
import pytest
from django.contrib.auth.models import User

from chat import unread
from chat.models import ApiToken, Membership, Message, Room
from pgsse.models import Event
from tests.chat_accounts import ChatAccount
from tests.postgres import Postgres
from tests.processes import ServerProcess
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def events(channel: str, event_type: str) -> list[dict[str, Any]]:
    rows = Event.objects.filter(channel=channel, type=event_type).order_by("seq")
    return [json.loads(data) for data in rows.values_list("data", flat=True)]


def test_a_reply_shows_what_it_answers_and_joins_its_thread(server: LiveServer) -> None:
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    first = alice.say("lobby", "Who reviews the release notes?")
    answer = bob.api("POST", "/api/rooms/lobby/messages/", {"text": "me", "reply_to": first["id"]})
    assert answer.status_code == 201, answer.text
    reply = answer.json()
    assert reply["reply_to"] == {"id": first["id"], "user": "alice", "excerpt": first["text"]}
    assert reply["thread"]["id"] == first["id"]
    assert reply["thread"]["replies"] == 1
    # A reply to a reply answers it, and joins the same thread (one level, as in Slack).
    again = alice.api(
        "POST", "/api/rooms/lobby/messages/", {"text": "thanks", "reply_to": reply["id"]}
    ).json()
    assert again["reply_to"]["id"] == reply["id"]
    assert again["thread"] == {**again["thread"], "id": first["id"], "replies": 2}
    # The page's form posts replies too.
    formed = bob.client.post(
        "/rooms/lobby/messages/",
        data={"text": "from the form", "reply_to": str(first["id"])},
        headers={"X-CSRFToken": bob.csrf_token},
    )
    assert formed.status_code == 201
    assert formed.json()["thread"]["replies"] == 3
    # History carries it all: the first message its thread's count, each reply its excerpt.
    page = alice.api("GET", "/api/rooms/lobby/messages/").json()["messages"]
    assert page[0]["thread"]["replies"] == 3
    assert [m["reply_to"]["user"] for m in page[1:]] == ["alice", "bob", "alice"]
    # The thread view: the first message, then the replies, oldest first.
    thread = alice.api("GET", f"/api/rooms/lobby/messages/{first['id']}/thread/").json()
    assert thread["root"]["id"] == first["id"]
    assert [m["text"] for m in thread["replies"]] == ["me", "thanks", "from the form"]
    assert thread["has_more"] is False
    paged = alice.api("GET", f"/api/rooms/lobby/messages/{first['id']}/thread/?limit=2").json()
    assert [m["text"] for m in paged["replies"]] == ["thanks", "from the form"]
    assert paged["has_more"] is True
    # A reply's own id names no thread: the answer says which does.
    wrong = alice.api("GET", f"/api/rooms/lobby/messages/{reply['id']}/thread/")
    assert wrong.status_code == 404
    assert str(first["id"]) in wrong.json()["error"]
    # Events: the reply's creation carries who it answers (never the text) and the count.
    created = events(Room.objects.get(slug="lobby").channel, "message_created")
    assert created[1]["reply_to"] == {"id": first["id"], "user": "alice"}
    assert [e["thread"] and e["thread"]["replies"] for e in created] == [None, 1, 2, 3]
    alice.close()
    bob.close()


def test_replies_answer_messages_of_their_room_only(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    elsewhere = alice.say("random", "in random")
    wrong = alice.api(
        "POST", "/api/rooms/lobby/messages/", {"text": "hi", "reply_to": elsewhere["id"]}
    )
    assert wrong.status_code == 404
    assert "no message" in wrong.json()["error"]
    for bad in ("x", -1, 1.5, True, [1]):
        answer = alice.api("POST", "/api/rooms/lobby/messages/", {"text": "hi", "reply_to": bad})
        assert answer.status_code == 400, bad
    assert not Message.objects.filter(room__slug="lobby").exists()
    # A private room's threads are 404 to outsiders, like the room.
    slug = alice.create_room("Plans", private=True)
    secret = alice.say(slug, "secret")
    bob = ChatAccount(server.url, "bob")
    assert bob.api("GET", f"/api/rooms/{slug}/messages/{secret['id']}/thread/").status_code == 404
    assert bob.api("GET", f"/api/rooms/{slug}/messages/{secret['id']}/").status_code == 404
    alice.close()
    bob.close()


def test_deleting_messages_of_a_thread(server: LiveServer) -> None:
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    first = alice.say("lobby", "the answered text")
    replies = [
        bob.api("POST", "/api/rooms/lobby/messages/", {"text": t, "reply_to": first["id"]}).json()
        for t in ("one", "two")
    ]
    channel = Room.objects.get(slug="lobby").channel
    assert bob.api("DELETE", f"/api/rooms/lobby/messages/{replies[0]['id']}/").status_code == 204
    deleted = events(channel, "message_deleted")
    assert deleted[-1]["thread"]["replies"] == 1
    # The first message goes: its replies stay, and say so; the thread still opens.
    assert alice.api("DELETE", f"/api/rooms/lobby/messages/{first['id']}/").status_code == 204
    assert "thread" not in events(channel, "message_deleted")[-1]
    left = alice.api("GET", "/api/rooms/lobby/messages/").json()["messages"]
    assert [m["text"] for m in left] == ["two"]
    assert left[0]["reply_to"] == {"id": first["id"], "user": None}
    thread = alice.api("GET", f"/api/rooms/lobby/messages/{first['id']}/thread/").json()
    assert thread["root"] is None
    assert [m["text"] for m in thread["replies"]] == ["two"]
    # The log keeps no trace of the answered text: not in the replies' events either.
    texts = Event.objects.filter(channel=channel).values_list("data", flat=True)
    assert not any("the answered text" in data for data in texts)
    alice.close()
    bob.close()


def test_replies_at_once_carry_their_threads_count_in_commit_order(
    two_processes: list[ServerProcess], pg: Postgres
) -> None:
    """Two replies to one message on two workers, both held inside their transactions
    after their insert (the test holds their read positions' rows, which posting locks
    last): each event's count must still be its place in the channel's order."""
    lobby = Room.objects.get(slug="lobby")
    users = [User.objects.create(username=f"poster{n}") for n in range(2)]
    Membership.objects.bulk_create([Membership(room=lobby, user=user) for user in users])
    first = Message.objects.create(room=lobby, author=users[0], author_name="poster0", text="go")
    tokens = [ApiToken.issue(user) for user in users]
    answers: list[int] = []

    def reply(index: int) -> None:
        # Each from an address of its own: the rate limiter's per-address lock is not shared.
        transport = httpx.HTTPTransport(local_address=f"127.0.0.{index + 2}")
        with httpx.Client(
            base_url=two_processes[index].url,
            transport=transport,
            headers={"Authorization": f"Bearer {tokens[index]}"},
            timeout=30,
        ) as client:
            body = {"text": f"reply {index}", "reply_to": first.id}
            answers.append(client.post("/api/rooms/lobby/messages/", json=body).status_code)

    with psycopg.connect(pg.url) as holder:
        holder.execute("SELECT 1 FROM chat_membership WHERE room_id = %s FOR UPDATE", [lobby.pk])
        runners = [threading.Thread(target=reply, args=(index,)) for index in range(2)]
        for runner in runners:
            runner.start()
        with psycopg.connect(pg.url, autocommit=True) as watcher:
            deadline = time.monotonic() + 10
            while waiting(watcher) < 2:
                assert time.monotonic() < deadline, "the replies never got to their locks"
                time.sleep(0.02)
        holder.rollback()
    for runner in runners:
        runner.join()
    assert answers == [201, 201]
    created = [e for e in events(lobby.channel, "message_created") if e["thread"]]
    assert [e["thread"]["replies"] for e in created] == [1, 2]


def waiting(connection: psycopg.Connection[Any]) -> int:
    """Backends of this database waiting for a lock."""
    row = connection.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'"
    ).fetchone()
    return int(row[0]) if row else 0


def test_a_reply_to_your_message_counts_as_a_mention(server: LiveServer) -> None:
    alice, bob, carol = (ChatAccount(server.url, name) for name in ("alice", "bob", "carol"))
    mine = alice.say("lobby", "a question")
    carol.say("lobby", "carol is here")
    others = carol.say("lobby", "not alice's")
    bob.api("POST", "/api/rooms/lobby/messages/", {"text": "an answer", "reply_to": mine["id"]})
    bob.api("POST", "/api/rooms/lobby/messages/", {"text": "to carol", "reply_to": others["id"]})
    counts = unread.counts_for(User.objects.get(username="alice"))
    lobby = counts[Room.objects.get(slug="lobby").pk]
    assert (lobby.unread, lobby.mentions) == (4, 1)
    carols = unread.counts_for(User.objects.get(username="carol"))[lobby.room_id]
    assert carols.mentions == 1
    for account in (alice, bob, carol):
        account.close()
