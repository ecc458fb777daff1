"""40 users posting at once into 5 shared rooms through the chat's JSON API, each within the
rate limits and from an address of its own, on two real workers; streams on both.

The invariant checker: every post is accepted (no 503, no 409, nothing but 201); the log
holds each accepted message once, in gap-free seqs per room; every stream of a room
receives every accepted message of that room once, in the log's order (commit order),
and nothing else; each user's messages keep the order they were posted in; and a message
cost at most 3 log events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from chat.models import ApiToken, Membership, Room
from pgsse.models import Event
from tests.clients import StreamReader, open_stream, stream_client
from tests.servers import ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)

USERS, ROOMS = 40, 5
#: Each user's posts: the per-user limit is 10 every 10 seconds, so all of them are within it.
POSTS_EACH = 10
#: Rooms each user belongs to before posting (posting joins the others): shared members.
MEMBER_OF = 3


@dataclass(frozen=True)
class Post:
    user: int
    number: int
    room: int
    status: int
    message_id: int | None


def populate() -> tuple[list[Room], list[str], list[str]]:
    """The rooms, the posters' tokens and the readers' tokens."""
    rng = random.Random(19)
    rooms = [Room.objects.create(slug=f"shared-{n}", name=f"Shared {n}") for n in range(ROOMS)]
    users = User.objects.bulk_create([User(username=f"poster{n}") for n in range(USERS)])
    Membership.objects.bulk_create(
        [
            Membership(room=room, user=user)
            for user in users
            for room in rng.sample(rooms, MEMBER_OF)
        ]
    )
    readers = User.objects.bulk_create([User(username=f"reader{n}") for n in range(6)])
    return (
        rooms,
        [ApiToken.issue(user) for user in users],
        [ApiToken.issue(user) for user in readers],
    )


async def poster(
    number: int, token: str, urls: list[str], rooms: list[Room], posts: list[Post]
) -> None:
    rng = random.Random(number)
    # An address of its own (127.0.0.0/8 is all loopback): the per-address limit is its own.
    transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{10 + number}")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, headers=headers, timeout=60) as client:
        for post in range(POSTS_EACH):
            room = rng.choice(rooms)
            url = f"{urls[(number + post) % len(urls)]}/api/rooms/{room.slug}/messages/"
            response = await client.post(url, json={"text": f"p{number}.{post}"})
            created = response.json().get("id") if response.status_code == 201 else None
            posts.append(Post(number, post, room.pk, response.status_code, created))
            await asyncio.sleep(rng.uniform(0, 0.2))


def room_log(rooms: list[Room]) -> dict[int, list[tuple[int, int]]]:
    """Per room: ``(seq, message id)`` of its channel's events, in seq order (every event
    is committed by now: none is waiting for its seq)."""
    found: dict[int, list[tuple[int, int]]] = {}
    for room in rooms:
        events = list(Event.objects.filter(channel=room.channel).order_by("seq"))
        assert all(e.seq is not None for e in events)
        found[room.pk] = [(e.seq or 0, json.loads(e.data)["id"]) for e in events]
    return found


def received(reader: StreamReader, room: int) -> list[int]:
    return [m["id"] for m in reader.messages() if m["room_id"] == room]


async def test_forty_users_posting_into_five_shared_rooms(
    two_processes: list[ServerProcess],
) -> None:
    rooms, tokens, readers = await sync_to_async(populate)()
    urls = [server.url for server in two_processes]
    before = await sync_to_async(Event.objects.count)()
    memberships = await sync_to_async(Membership.objects.count)()
    streams: list[tuple[list[int], StreamReader]] = []
    async with contextlib.AsyncExitStack() as stack:
        # A room page's stream per room on each worker, and room lists following every room.
        for index, room in enumerate(rooms):
            for url in urls:
                client = await stack.enter_async_context(stream_client(url))
                client.headers["Authorization"] = f"Bearer {readers[index % len(readers)]}"
                path = f"/rooms/{room.slug}/events/"
                streams.append(
                    ([room.pk], await stack.enter_async_context(open_stream(client, path)))
                )
        for index, url in enumerate(urls):
            client = await stack.enter_async_context(stream_client(url))
            client.headers["Authorization"] = f"Bearer {readers[-1 - index]}"
            path = "/events/me/?follow=" + ",".join(str(room.pk) for room in rooms)
            followed = [room.pk for room in rooms]
            streams.append((followed, await stack.enter_async_context(open_stream(client, path))))
        for _, reader in streams:
            assert reader.status_code == 200
            await reader.wait_for(lambda r: bool(r.last_id))

        posts: list[Post] = []
        await asyncio.gather(
            *(poster(n, token, urls, rooms, posts) for n, token in enumerate(tokens))
        )
        statuses = sorted({post.status for post in posts})
        assert statuses == [201], [p for p in posts if p.status != 201][:5]
        accepted: dict[int, set[int]] = defaultdict(set)
        for post in posts:
            assert post.message_id is not None
            accepted[post.room].add(post.message_id)

        for followed, reader in streams:
            await reader.wait_for(
                lambda r, f=followed: all(len(received(r, pk)) >= len(accepted[pk]) for pk in f),
                timeout=60,
            )
        log = await sync_to_async(room_log)(rooms)

    for room in rooms:
        seqs = [seq for seq, _ in log[room.pk]]
        in_log = [message for _, message in log[room.pk]]
        # Once each, gap-free, exactly the accepted ones.
        assert seqs == list(range(1, len(seqs) + 1))
        assert sorted(in_log) == sorted(accepted[room.pk])
        for followed, reader in streams:
            if room.pk in followed:
                assert received(reader, room.pk) == in_log  # once each, in commit order
    # Each user's messages in the order they were posted.
    position = {message: index for room in rooms for index, (_, message) in enumerate(log[room.pk])}
    for user in range(USERS):
        mine: dict[int, list[int]] = defaultdict(list)
        for post in sorted((p for p in posts if p.user == user), key=lambda p: p.number):
            assert post.message_id is not None
            mine[post.room].append(position[post.message_id])
        assert all(order == sorted(order) for order in mine.values())
    # Fan-out on read: one event per message, and a read position for the poster at most;
    # and once per room a poster joined by posting in it, `joined` on their own channel.
    added = await sync_to_async(Event.objects.count)() - before
    joins = await sync_to_async(Membership.objects.count)() - memberships
    assert len(posts) <= added - joins <= 2 * len(posts), (added, joins, len(posts))
    joined = await sync_to_async(Event.objects.filter(type="joined").count)()
    assert joined == joins
