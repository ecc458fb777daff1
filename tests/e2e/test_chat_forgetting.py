"""The chat's log forgets, through real streams: a reader who resumes from an old position
never receives a deleted message's text or an edited one's older text, and a member
removed from a private room that is then deleted receives nothing of it, even when they
create a room whose name gives the same slug and resume from their old position.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client

import pgsse
from chat.models import Room
from pgsse.models import Event
from tests.chat_accounts import ChatAccount
from tests.clients import StreamReader, open_stream
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def live(reader: StreamReader) -> bool:
    return bool(reader.last_id)


def texts(reader: StreamReader) -> str:
    """Everything the stream's events said, in one string."""
    return "\n".join(event.data for event in reader.events)


def room_seq(event_id: str) -> int:
    """The room channel's seq in a room stream's id (its channels sort directory,
    presence:, room:, typing:, user:)."""
    return int(event_id.split(":", 1)[1].split(".")[2])


async def account(server: LiveServer, name: str) -> ChatAccount:
    return await sync_to_async(ChatAccount)(server.url, name)


async def test_replay_across_a_deletion_and_an_edit_tells_no_old_text(
    server: LiveServer,
) -> None:
    alice, bob = await account(server, "alice"), await account(server, "bob")
    async with bob.stream_client() as client:
        async with open_stream(client, "/rooms/lobby/events/") as first:
            await first.wait_for(live)
            position = first.last_id
        deleted = await sync_to_async(alice.say)("lobby", "a secret, deleted soon")
        edited = await sync_to_async(alice.say)("lobby", "a typo, edited soon")
        url = "/api/rooms/lobby/messages/{}/"
        gone = await sync_to_async(alice.api)("DELETE", url.format(deleted["id"]))
        assert gone.status_code == 204
        fix = await sync_to_async(alice.api)("PATCH", url.format(edited["id"]), {"text": "fixed"})
        assert fix.status_code == 200
        kept = await sync_to_async(alice.say)("lobby", "kept as it is")
        async with open_stream(client, "/rooms/lobby/events/", last_event_id=position) as again:
            await again.wait_for(lambda r: kept in r.messages())
            assert "secret" not in texts(again)
            assert "typo" not in texts(again)
            said = [(e.event, json.loads(e.data)) for e in again.events if e.data]
            gone_data = {"id": deleted["id"], "room": "lobby", "room_id": deleted["room_id"]}
            assert said == [
                ("message_deleted", {**gone_data, "user": "alice"}),
                ("message_updated", fix.json()),
                ("message_created", kept),
            ]
            # The two creations, redacted, came as id-only frames: the room's seqs stay
            # gap-free, five events after the position.
            start = room_seq(position)
            assert {room_seq(e.id) for e in again.events if e.id} == set(
                range(start + 1, start + 6)
            )
    alice.close()
    bob.close()


def delete_in_the_admin(slug: str) -> None:
    admin = User.objects.create_superuser("root", "root@example.com", "a-long-password-42")
    browser = Client()
    browser.force_login(admin)
    room = Room.objects.get(slug=slug)
    response = browser.post(f"/admin/chat/room/{room.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content


async def test_a_removed_member_receives_nothing_of_a_deleted_room_whose_name_they_reuse(
    server: LiveServer,
) -> None:
    alice, bob = await account(server, "alice"), await account(server, "bob")
    plans = await sync_to_async(alice.create_room)("Plans", private=True)
    invited = await sync_to_async(alice.form)(f"/rooms/{plans}/invite/", username="bob")
    assert invited.status_code == 302
    old = await sync_to_async(Room.objects.get)(slug=plans)
    async with bob.stream_client() as client:
        async with open_stream(client, f"/rooms/{plans}/events/") as member:
            await member.wait_for(live)
            await sync_to_async(alice.say)(plans, "while bob is a member")
            await member.wait_for(lambda r: bool(r.messages()))
            position = member.last_id
            removed = await sync_to_async(alice.api)("DELETE", f"/api/rooms/{plans}/members/bob/")
            assert removed.status_code == 204
            await member.wait_for(lambda r: r.ended)
        await sync_to_async(alice.say)(plans, "after bob left: the secret plan")
        await sync_to_async(delete_in_the_admin)(plans)
        # The room's channels are gone, and their names are never published to again.
        channels = old.channels
        assert not await sync_to_async(Event.objects.filter(channel__in=channels).exists)()
        with pytest.raises(pgsse.ChannelPurged):
            await sync_to_async(pgsse.publish)(old.channel, "message_created", {"text": "x"})
        # Bob makes a public room with the private room's name as its slug, and resumes.
        response = await sync_to_async(bob.api)("POST", "/api/rooms/", {"name": plans})
        assert response.status_code == 201
        assert response.json()["slug"] == plans
        async with open_stream(client, f"/rooms/{plans}/events/", last_event_id=position) as again:
            await again.wait_for(live)
            marker = await sync_to_async(bob.say)(plans, "bob's own room")
            await again.wait_for(lambda r: bool(r.messages()))
            assert "secret" not in texts(again)
            assert "while bob is a member" not in texts(again)
            assert [e.event for e in again.events if e.data] == ["reset", "message_created"]
            assert again.messages() == [marker]
    alice.close()
    bob.close()


async def test_a_purged_rooms_stream_is_refused_and_open_ones_end(server: LiveServer) -> None:
    alice = await account(server, "alice")
    slug = await sync_to_async(alice.create_room)("Short lived")
    async with alice.stream_client() as client:
        async with open_stream(client, f"/rooms/{slug}/events/") as reader:
            await reader.wait_for(live)
            await sync_to_async(delete_in_the_admin)(slug)
            await reader.wait_for(lambda r: r.ended)
        response = await client.get(f"/rooms/{slug}/events/")
        assert response.status_code == 404
    alice.close()


def test_an_edit_keeps_only_its_newest_text_in_the_log(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    sent = alice.say("lobby", "version one")
    url = f"/api/rooms/lobby/messages/{sent['id']}/"
    for text in ("version two", "version three"):
        assert alice.api("PATCH", url, {"text": text}).status_code == 200
    lobby = Room.objects.get(slug="lobby")
    events = Event.objects.filter(channel=lobby.channel).order_by("seq")
    rows = list(events.values_list("type", "data", "redacted_at"))
    assert len(rows) == 3
    assert [(kind, data) for kind, data, at in rows if at is not None] == [("", ""), ("", "")]
    (newest,) = [data for _, data, at in rows if at is None]
    assert json.loads(newest)["text"] == "version three"
    alice.close()


def test_a_deleted_accounts_own_channel_is_purged(server: LiveServer) -> None:
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    plans = alice.create_room("Plans", private=True)
    assert alice.form(f"/rooms/{plans}/invite/", username="bob").status_code == 302
    user = User.objects.get(username="bob")
    channel = f"user:{user.pk}"
    assert Event.objects.filter(channel=channel, type="invited").exists()
    user.delete()
    assert not Event.objects.filter(channel=channel).exists()
    with pytest.raises(pgsse.ChannelPurged):
        pgsse.publish(channel, "read", {"room_id": 1})
    alice.close()
    bob.close()
