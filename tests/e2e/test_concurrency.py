"""Many publishers, many streams reconnecting at random: every channel's log arrives exactly.

32 publishers (threads, each its own connection) publish 20,000 events over 8 channels
while 50 streams (some over several channels) drop their connection at random and
resume from their last id or from an older one. The checker proves, per channel and per
connection: no loss, no duplicate, seqs strictly increasing by one, each event's data as
the log holds it, and commit order equal to seq order (a reader watching the log never
sees a later seq committed before an earlier one).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections import defaultdict

import psycopg
import pytest
from django.db import connection

import pgsse
from pgsse.position import canonical_channels, parse_position
from tests.clients import LightReader
from tests.postgres import Postgres
from tests.servers import ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)

CHANNELS = [f"load:{n}" for n in range(8)]
PUBLISHERS, EVENTS_EACH = 32, 625  # 20,000 events
SINGLE, MULTI = 30, 20


def publisher(number: int, seed: int) -> None:
    rng = random.Random(seed * 1000 + number)
    try:
        for i in range(EVENTS_EACH):
            pgsse.publish(rng.choice(CHANNELS), "e", {"p": number, "i": i})
    finally:
        connection.close()


async def watch_commits(url: str, done: asyncio.Event) -> list[str]:
    """Read the log until ``done``; return every hole seen: a channel whose committed
    seqs were not 1..n at some moment (a later seq committed before an earlier one)."""
    holes: list[str] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while not done.is_set():
            cursor = await conn.execute(
                "SELECT channel, count(*), max(seq) FROM pgsse_event"
                " WHERE channel = ANY(%s) GROUP BY channel",
                (CHANNELS,),
            )
            rows = await cursor.fetchall()
            holes += [f"{c}: {n} events up to seq {top}" for c, n, top in rows if n != top]
            await asyncio.sleep(0.01)
    return holes


async def churn(consumers: list[LightReader], rng: random.Random, done: asyncio.Event) -> int:
    """Drop random connections, resuming from the last id or an older one received."""
    drops = 0
    while not done.is_set():
        await asyncio.sleep(rng.uniform(0.02, 0.2))
        consumer = rng.choice(consumers)
        received = [entry[1] for _, entries in consumer.segments for entry in entries]
        if not received:
            continue
        resume = rng.choice(received) if rng.random() < 0.3 else consumer.last_id
        consumer.reconnect(resume)
        drops += 1
    return drops


def check_consumer(
    consumer: LightReader, channels: tuple[str, ...], log: dict[tuple[str, int], str]
) -> dict[str, int]:
    """Check every connection of ``consumer``; return the highest seq seen per channel."""
    highest = dict.fromkeys(channels, 0)
    for opened_with, entries in consumer.segments:
        position = parse_position(opened_with, channels) if opened_with else None
        for kind, event_id, data in entries:
            assert kind != "reset", f"unexpected reset resuming from {opened_with!r}"
            new = parse_position(event_id, channels)
            if kind == "":
                # The id-only frame: where live delivery starts, after any replay.
                assert position is None or new == position
                position = new
                continue
            assert position is not None
            moved = [c for c in channels if new[c] != position[c]]
            assert len(moved) == 1, (position, new)
            (channel,) = moved
            assert new[channel] == position[channel] + 1, (channel, position, new)
            assert data == log[channel, new[channel]]
            position = new
            highest[channel] = max(highest[channel], new[channel])
    return highest


async def test_32_publishers_50_reconnecting_streams_nothing_lost_doubled_or_reordered(
    pg: Postgres, transactional_db: None
) -> None:
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]
    server = ServerProcess(command, pg.url, TEST_ROOT_URLCONF="tests.urls").start()
    subscriptions: list[tuple[str, ...]] = [(CHANNELS[n % 8],) for n in range(SINGLE)]
    subscriptions += [tuple(rng.sample(CHANNELS, rng.choice((2, 3)))) for _ in range(MULTI)]
    consumers: list[LightReader] = []
    for channels in subscriptions:
        path = (
            f"/events/{channels[0]}/"
            if len(channels) == 1
            else "/multi/?" + "&".join(f"channel={c}" for c in channels)
        )
        consumers.append(LightReader(server.url, path).start())
    try:
        for consumer in consumers:
            await asyncio.wait_for(consumer.live.wait(), 30)
        publishing_done = asyncio.Event()
        watcher = asyncio.create_task(watch_commits(pg.url, publishing_done))
        churning = asyncio.create_task(churn(consumers, rng, publishing_done))
        await asyncio.gather(*(asyncio.to_thread(publisher, n, seed) for n in range(PUBLISHERS)))
        publishing_done.set()
        drops = await churning
        holes = await watcher

        async with await psycopg.AsyncConnection.connect(pg.url) as conn:
            cursor = await conn.execute("SELECT channel, seq, data FROM pgsse_event")
            log = {(channel, seq): data for channel, seq, data in await cursor.fetchall()}
        heads: dict[str, int] = defaultdict(int)
        for channel, seq in log:
            heads[channel] = max(heads[channel], seq)

        def caught_up(consumer: LightReader, channels: tuple[str, ...]) -> bool:
            if not consumer.last_id:
                return False
            position = parse_position(consumer.last_id, canonical_channels(channels))
            return all(position[c] == heads[c] for c in channels)

        for consumer, channels in zip(consumers, subscriptions, strict=True):
            await consumer.wait_for(lambda r, c=channels: caught_up(r, c), timeout=120)
    finally:
        for consumer in consumers:
            await consumer.stop()
        server.kill()

    # The log holds all 20,000, each channel's seqs gap-free.
    assert len(log) == PUBLISHERS * EVENTS_EACH, f"seed {seed}"
    assert all(
        sorted(s for c, s in log if c == ch) == list(range(1, heads[ch] + 1)) for ch in CHANNELS
    )
    # Commit order is seq order: no reader ever saw a later seq committed before an earlier.
    assert holes == [], f"seed {seed}"
    # Every publisher's events keep their order within a channel (commit order = delivery).
    for channel in CHANNELS:
        order = [json.loads(log[channel, seq]) for seq in range(1, heads[channel] + 1)]
        for number in range(PUBLISHERS):
            mine = [event["i"] for event in order if event["p"] == number]
            assert mine == sorted(mine)
    # Every stream, on every connection: contiguous, exact, and finally complete.
    for consumer, channels in zip(consumers, subscriptions, strict=True):
        highest = check_consumer(consumer, canonical_channels(channels), log)
        assert highest == {c: heads[c] for c in channels}, f"seed {seed}"
    assert drops >= 50, f"only {drops} reconnects"
