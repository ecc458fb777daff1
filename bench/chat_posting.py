"""What a message costs the chat, by room size: POST latency through its JSON API and the
log events each message adds, in a room of 10 members and in one of 10,000.

The chat fans out on read (docs/chat.md): a message is one event on its room's channel
whatever the room's size, plus, when the poster had unread messages there, a ``read``
event on the poster's own channel; members' counts are computed where they are read. So
the two rooms should cost the same.

Posting as people do: ``POSTERS`` members with API tokens take turns, one post in flight
at a time (latency, not throughput), each within the chat's limits (at most 10 posts per
user and room size, every poster from a loopback address of its own, so the per-address
limit is its own too). The server is the bench's ``chat`` server (one uvicorn worker,
the wrapped application with the chat's URLs). Members are made in the database.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
from dataclasses import asdict, dataclass

from bench.database import BenchDatabase
from bench.publisher import close_django_connections
from bench.servers import Server

#: Members taking turns to post in each room; each posts at most the per-user limit.
POSTERS = 20
PER_POSTER = 10
#: Loopback addresses of the posters (127.0.0.10 and up: the swarm uses 127.0.1.x).
FIRST_ADDRESS = 10


@dataclass
class ChatPostingResult:
    members: int
    posts: int
    #: Answers other than 201 (a 429 would mean the bench broke the chat's limits).
    refused: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    #: Log events added per accepted message: on the room's channel, and on others.
    events_per_message: float
    room_events_per_message: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _populate(members: int, size_index: int) -> tuple[str, list[str]]:
    """A public room of ``members`` members, ``POSTERS`` of whom have API tokens."""
    from django.contrib.auth.models import User

    from chat.models import ApiToken, Membership, Room

    slug = f"crowd-{members}"
    room = Room.objects.create(slug=slug, name=f"Crowd of {members}")
    users = User.objects.bulk_create(
        [User(username=f"crowd{size_index}-{n}", password="!") for n in range(members)],
        batch_size=2000,
    )
    Membership.objects.bulk_create(
        [Membership(room=room, user=user) for user in users], batch_size=5000
    )
    tokens = [ApiToken.issue(user) for user in users[:POSTERS]]
    close_django_connections()
    return slug, tokens


def _events(channel: str) -> tuple[int, int]:
    """(events in the log, of which on ``channel``)."""
    from pgsse.models import Event

    total = Event.objects.count()
    on_room = Event.objects.filter(channel=channel).count()
    close_django_connections()
    return total, on_room


def _room_channel(slug: str) -> str:
    from chat.models import Room

    channel = Room.objects.get(slug=slug).channel
    close_django_connections()
    return channel


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class _Poster:
    def __init__(self, port: int, token: str, address: str) -> None:
        self.port = port
        self.address = address
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Host": "127.0.0.1",
        }
        self.connection = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=60, source_address=(self.address, 0)
        )

    def post(self, slug: str, text: str) -> tuple[int, float]:
        """POST one message; (status, seconds until the answer was read)."""
        body = json.dumps({"text": text})
        started = time.perf_counter()
        try:
            status = self._post(slug, body)
        except (ConnectionError, http.client.HTTPException):
            # uvicorn closes an idle keep-alive connection after 5 s: open another.
            self.connection.close()
            self.connection = self._connect()
            started = time.perf_counter()
            status = self._post(slug, body)
        return status, time.perf_counter() - started

    def _post(self, slug: str, body: str) -> int:
        self.connection.request("POST", f"/api/rooms/{slug}/messages/", body, self.headers)
        response = self.connection.getresponse()
        response.read()
        return response.status

    def close(self) -> None:
        self.connection.close()


def measure(
    port: int, members: int, slug: str, tokens: list[str], posts: int, first: int
) -> ChatPostingResult:
    """``posts`` messages in room ``slug`` of ``members`` members (posters take turns, from
    addresses 127.0.0.``first`` and up)."""
    channel = _room_channel(slug)
    posters = [_Poster(port, token, f"127.0.0.{first + n}") for n, token in enumerate(tokens)]
    before, before_room = _events(channel)
    latencies: list[float] = []
    refused = 0
    try:
        for number in range(min(posts, len(posters) * PER_POSTER)):
            status, seconds = posters[number % len(posters)].post(slug, f"message {number}")
            if status == 201:
                latencies.append(seconds)
            else:
                refused += 1
    finally:
        for poster in posters:
            poster.close()
    after, after_room = _events(channel)
    accepted = max(len(latencies), 1)
    return ChatPostingResult(
        members=members,
        posts=len(latencies),
        refused=refused,
        p50_ms=statistics.median(latencies) * 1000 if latencies else 0.0,
        p90_ms=_percentile(latencies, 0.9) * 1000 if latencies else 0.0,
        p99_ms=_percentile(latencies, 0.99) * 1000 if latencies else 0.0,
        max_ms=max(latencies) * 1000 if latencies else 0.0,
        events_per_message=(after - before) / accepted,
        room_events_per_message=(after_room - before_room) / accepted,
    )


def run(database: BenchDatabase, sizes: tuple[int, ...], posts: int) -> list[ChatPostingResult]:
    """Post ``posts`` messages in a room of each size, on one chat server."""
    rooms = [_populate(members, index) for index, members in enumerate(sizes)]
    results = []
    with Server("chat", database) as server:
        for index, (members, (slug, tokens)) in enumerate(zip(sizes, rooms, strict=True)):
            _warm_up(server.port, slug, tokens[0])
            first = FIRST_ADDRESS + index * POSTERS
            results.append(measure(server.port, members, slug, tokens, posts, first))
    return results


def _warm_up(port: int, slug: str, token: str) -> None:
    """Unmeasured reads: the first requests import modules and open connections."""
    reader = _Poster(port, token, "127.0.0.1")
    try:
        for _ in range(3):
            path = f"/api/rooms/{slug}/messages/?limit=1"
            reader.connection.request("GET", path, headers=reader.headers)
            reader.connection.getresponse().read()
    finally:
        reader.close()
