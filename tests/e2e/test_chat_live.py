"""What the chat publishes, read from real streams: edits, deletes (admin too), presence,
typing, and the rate limit shared by server processes."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

import chatsite.settings
from chat.models import Message, Room
from pgsse.models import Event
from tests.chat_accounts import ChatAccount
from tests.clients import StreamReader, open_stream
from tests.servers import LiveServer, ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)


def live(reader: StreamReader) -> bool:
    return bool(reader.last_id)


def data_of(reader: StreamReader, event_type: str) -> list[Any]:
    return [json.loads(e.data) for e in reader.of_type(event_type)]


async def account(server: LiveServer, name: str) -> ChatAccount:
    return await sync_to_async(ChatAccount)(server.url, name)


async def test_edits_and_deletes_reach_other_readers_live(server: LiveServer) -> None:
    alice, bob = await account(server, "alice"), await account(server, "bob")
    async with bob.stream_client() as client, open_stream(client, "/rooms/lobby/events/") as seen:
        await seen.wait_for(live)
        sent = await sync_to_async(alice.say)("lobby", "frist")
        url = f"/api/rooms/lobby/messages/{sent['id']}/"
        edited = await sync_to_async(alice.api)("PATCH", url, {"text": "first"})
        assert edited.status_code == 200
        assert (await sync_to_async(alice.api)("DELETE", url)).status_code == 204
        await seen.wait_for(lambda r: bool(r.of_type("message_deleted")))
        assert data_of(seen, "message_created") == [sent]
        assert data_of(seen, "message_updated") == [edited.json()]
        assert data_of(seen, "message_deleted") == [
            {"id": sent["id"], "room": "lobby", "room_id": sent["room_id"], "user": "alice"}
        ]
        assert [e.event for e in seen.events if e.event != "message"] == [
            "message_created",
            "message_updated",
            "message_deleted",
        ]
    alice.close()
    bob.close()


async def test_deleting_in_the_admin_removes_the_message_live(server: LiveServer) -> None:
    alice = await account(server, "alice")
    sent = await sync_to_async(alice.say)("lobby", "spam")

    def delete_in_admin() -> int:
        admin = User.objects.create_superuser("admin", "admin@example.com", "x")
        client = Client(enforce_csrf_checks=False)
        client.force_login(admin)
        response = client.post(f"/admin/chat/message/{sent['id']}/delete/", {"post": "yes"})
        return response.status_code

    async with alice.stream_client() as client, open_stream(client, "/rooms/lobby/events/") as seen:
        await seen.wait_for(live)
        assert await sync_to_async(delete_in_admin)() == 302
        await seen.wait_for(lambda r: bool(r.of_type("message_deleted")))
        assert data_of(seen, "message_deleted") == [
            {"id": sent["id"], "room": "lobby", "room_id": sent["room_id"], "user": "alice"}
        ]
    assert not await sync_to_async(Message.objects.filter(id=sent["id"]).exists)()
    alice.close()


async def test_presence_counts_users_once_and_publishes_changes_only(
    server: LiveServer, settings: Any
) -> None:
    alice, bob = await account(server, "alice"), await account(server, "bob")

    async def beat(user: ChatAccount, tab: str, leave: bool = False) -> None:
        body = {"tab": tab, "leave": leave}
        response = await sync_to_async(user.api)("POST", "/api/rooms/lobby/presence/", body)
        assert response.status_code == 204, response.text

    async with alice.stream_client() as client, open_stream(client, "/rooms/lobby/events/") as seen:
        await seen.wait_for(live)

        def sets(reader: StreamReader) -> list[list[str]]:
            return [d["users"] for d in data_of(reader, "presence")]

        await beat(alice, "tab-1")
        await beat(alice, "tab-2")  # a second tab: still one alice
        await beat(alice, "tab-1")  # a heartbeat changes nothing
        await beat(bob, "tab-b")
        await seen.wait_for(lambda r: len(sets(r)) == 2)
        await beat(alice, "tab-1", leave=True)  # one of two tabs closes: alice stays
        await beat(bob, "tab-b", leave=True)
        await seen.wait_for(lambda r: len(sets(r)) == 3)
        assert sets(seen) == [["alice"], ["alice", "bob"], ["alice"]]
        # A tab that stops beating without its leave beacon expires (here after 0.5 s).
        settings.CHAT_PRESENCE_TIMEOUT = 0.5
        await asyncio.sleep(0.6)  # the time that must pass, not a synchronisation
        await beat(bob, "tab-b2")
        await seen.wait_for(lambda r: len(sets(r)) == 4)
        assert sets(seen)[-1] == ["bob"]
        # Everyone else's heartbeat notices; the page renders the current set.
        page = await sync_to_async(bob.client.get)("/rooms/lobby/")
        assert '<ul id="presence">\n        <li data-person="bob">bob</li>' in page.text
    alice.close()
    bob.close()


async def test_typing_is_published_rate_limited_and_never_stored_as_a_message(
    server: LiveServer, settings: Any
) -> None:
    alice, bob = await account(server, "alice"), await account(server, "bob")
    async with bob.stream_client() as client, open_stream(client, "/rooms/lobby/events/") as seen:
        await seen.wait_for(live)
        first = await sync_to_async(alice.api)("POST", "/api/rooms/lobby/typing/", {})
        assert first.status_code == 204
        again = await sync_to_async(alice.api)("POST", "/api/rooms/lobby/typing/", {})
        assert again.status_code == 429
        await seen.wait_for(lambda r: bool(r.of_type("typing")))
        marker = await sync_to_async(bob.say)("lobby", "marker")
        await seen.wait_for(lambda r: bool(r.messages()))
        assert data_of(seen, "typing") == [{"user": "alice", "after": 0}]
        assert seen.messages() == [marker]
    assert await sync_to_async(Message.objects.count)() == 1

    # The chat's retention rules prune typing notices after a minute; messages stay.
    def prune_an_hour_later() -> tuple[int, int]:
        Event.objects.update(created_at=timezone.now() - timedelta(hours=1))
        settings.PGSSE = {**settings.PGSSE, "RETENTION": chatsite.settings.PGSSE["RETENTION"]}
        call_command("pgsse_prune", stdout=StringIO())
        lobby = Room.objects.get(slug="lobby")
        typing = Event.objects.filter(channel=lobby.typing_channel).count()
        messages = Event.objects.filter(channel=lobby.channel).count()
        return typing, messages

    assert await sync_to_async(prune_an_hour_later)() == (0, 1)
    alice.close()
    bob.close()


def test_rate_limit_is_shared_by_server_processes(two_processes: list[ServerProcess]) -> None:
    first, second = two_processes
    alice = ChatAccount(first.url, "alice")
    on_second = ChatAccount(second.url, "alice", signup=False)
    for n in range(5):
        alice.say("lobby", f"first process {n}")
        on_second.say("lobby", f"second process {n}")
    assert alice.post("lobby", "eleventh").status_code == 429
    assert on_second.post("lobby", "eleventh").status_code == 429
    alice.close()
    on_second.close()
