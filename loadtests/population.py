"""The chat's rooms and users for a run, made directly in the database (setup is not the test).

Every user gets an API token (``chat.models.ApiToken``): streams and posts authenticate
with ``Authorization: Bearer``, as the chat's bots do.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Population:
    rooms: list[str]
    #: Each room's channels, in the canonical order of the ids its stream sends: the
    #: room's three and the chat's directory (the reader's own channel sorts last and
    #: carries nothing for these readers).
    channels: dict[str, tuple[str, ...]]
    readers: list[str]  # tokens
    writers: list[str]  # tokens


def populate(
    rooms: int, readers: int, writers: int, extra_rooms: tuple[str, ...] = ()
) -> Population:
    from django.contrib.auth.models import User
    from django.db import connection

    from chat import directory
    from chat.models import ApiToken, Room
    from pgsse.position import canonical_channels

    slugs = [f"room-{n:02d}" for n in range(rooms)]
    made = [Room.objects.create(slug=slug, name=slug.title()) for slug in (*slugs, *extra_rooms)]
    users = User.objects.bulk_create(
        [User(username=f"load-{n}", password="!") for n in range(readers + writers)]
    )
    tokens = [ApiToken.issue(user) for user in users]
    connection.close()
    return Population(
        rooms=slugs,
        channels={
            room.slug: canonical_channels([*room.channels, directory.CHANNEL]) for room in made
        },
        readers=tokens[:readers],
        writers=tokens[readers:],
    )


def read_log(channels: set[str]) -> tuple[list[tuple[str, int, str]], dict[tuple[str, int], float]]:
    """The log's rows of ``channels`` (channel, seq, data), and each event's created_at."""
    from django.db import connection

    from pgsse.models import Event

    rows = []
    created = {}
    committed = Event.objects.filter(channel__in=channels, seq__isnull=False)
    for channel, seq, data, at in committed.values_list("channel", "seq", "data", "created_at"):
        assert seq is not None
        rows.append((channel, seq, data))
        created[(channel, seq)] = at.timestamp()
    connection.close()
    return rows, created


def heads(channels: set[str]) -> dict[str, int]:
    from django.db import connection

    from pgsse.models import Channel

    found = dict(Channel.objects.filter(name__in=channels).values_list("name", "last_seq"))
    connection.close()
    return found


def burst(room: str, count: int, size: int) -> int:
    """Publish ``count`` chat-like events of ``size`` characters to ``room``'s channel."""
    from django.db import connection, transaction

    import pgsse
    from chat.models import Room

    channel = Room.objects.get(slug=room).channel
    for start in range(0, count, 100):
        with transaction.atomic():
            pgsse.publish_many(
                [
                    (channel, "message_created", {"id": -n, "text": "z" * size})
                    for n in range(start, min(count, start + 100))
                ]
            )
    connection.close()
    return count
