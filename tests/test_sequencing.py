"""Commit-time sequencing under load: 32 publishers, random channel sets in random orders.

Each publisher runs transactions that publish, one ``publish()`` at a time (some through
``publish_many()``), to a random set of channels in a random order, interleaved, and rolls
some back on purpose. While they run, a watcher reads the log and a real server streams
every channel. The checks, event by event:

- no transaction failed (no deadlock, no serialization failure: PostgreSQL would have
  aborted one of them with either);
- every committed event is in the log once, no rolled-back one is;
- each channel's seqs count 1..n with no gap, and no reader ever saw a later seq committed
  before an earlier one (the watcher: a hole it sees is an error);
- one transaction's events of a channel have consecutive seqs, in its publish order;
- the channels agree on one commit order: ordering transactions by their seqs in every
  channel gives no cycle (two transactions sharing two channels are in the same order in
  both);
- every stream received exactly its channel's log, in seq order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from django.test import override_settings

import pgsse
from tests.clients import LightReader
from tests.postgres import Postgres
from tests.servers import LiveServer

CHANNELS = [f"seq:{n}" for n in range(20)]
PUBLISHERS, TRANSACTIONS_EACH = 32, 12


class RolledBack(Exception):
    pass


def run_publisher(
    number: int, seed: int, done: list[tuple[int, int, list[tuple[str, Any]]]]
) -> None:
    """Publish ``TRANSACTIONS_EACH`` transactions; record the committed ones."""
    rng = random.Random(seed * 100 + number)
    try:
        for tx in range(TRANSACTIONS_EACH):
            chosen = rng.sample(CHANNELS, rng.randint(1, 5))
            events = [(c, [number, tx, k]) for c in chosen for k in range(rng.randint(1, 3))]
            rng.shuffle(events)
            # Keep each channel's own events in k order: it is the publish order checked.
            per_channel: dict[str, int] = defaultdict(int)
            ordered = []
            for channel, _ in events:
                ordered.append((channel, [number, tx, per_channel[channel]]))
                per_channel[channel] += 1
            roll_back = rng.random() < 0.15
            try:
                with transaction.atomic():
                    if rng.random() < 0.2:
                        pgsse.publish_many([(c, "e", data) for c, data in ordered])
                    else:
                        for channel, data in ordered:
                            pgsse.publish(channel, "e", data)
                    if roll_back:
                        raise RolledBack
            except RolledBack:
                continue
            done.append((number, tx, ordered))
    finally:
        connection.close()


def watch(url: str, stop: threading.Event, holes: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            rows = conn.execute(
                "SELECT channel, count(*), max(seq) FROM pgsse_event"
                " WHERE channel LIKE 'seq:%%' GROUP BY channel"
            ).fetchall()
            holes.extend(f"{c}: {n} events up to seq {top}" for c, n, top in rows if n != top)


def has_cycle(edges: dict[tuple[int, int], set[tuple[int, int]]]) -> bool:
    state: dict[tuple[int, int], int] = {}  # 1: on the path, 2: done

    def visit(node: tuple[int, int]) -> bool:
        state[node] = 1
        for after in edges.get(node, ()):
            if state.get(after) == 1 or (after not in state and visit(after)):
                return True
        state[node] = 2
        return False

    return any(node not in state and visit(node) for node in list(edges))


@pytest.fixture
def server(transactional_db: None, pg: Postgres) -> Iterator[LiveServer]:
    """pgsse alone (tests/urls.py), wrapped, served by a real uvicorn."""
    from django.core.asgi import get_asgi_application

    import pgsse.asgi

    with override_settings(ROOT_URLCONF="tests.urls"):
        live = LiveServer(pgsse.asgi.wrap(get_asgi_application())).start()
        yield live
        live.stop()


async def test_32_publishers_random_channel_sets_random_orders(
    pg: Postgres, server: LiveServer
) -> None:
    seed = random.randrange(10**6)
    readers = [LightReader(server.url, f"/events/{channel}/").start() for channel in CHANNELS]
    try:
        for reader in readers:
            await asyncio.wait_for(reader.live.wait(), 30)
        committed: list[tuple[int, int, list[tuple[str, Any]]]] = []
        stop, holes = threading.Event(), list[str]()
        watcher = threading.Thread(target=watch, args=(pg.url, stop, holes), daemon=True)
        watcher.start()
        await asyncio.gather(
            *(asyncio.to_thread(run_publisher, n, seed, committed) for n in range(PUBLISHERS))
        )
        stop.set()
        await asyncio.to_thread(watcher.join)

        async with await psycopg.AsyncConnection.connect(pg.url) as conn:
            cursor = await conn.execute(
                "SELECT channel, seq, data FROM pgsse_event WHERE channel LIKE 'seq:%%'"
                " ORDER BY channel, seq"
            )
            rows = await cursor.fetchall()
        log: dict[str, list[tuple[int, list[int]]]] = defaultdict(list)
        for channel, seq, data in rows:
            log[channel].append((seq, json.loads(data)))
        for reader, channel in zip(readers, CHANNELS, strict=True):
            await reader.wait_for(lambda r, c=channel: r.count >= len(log[c]), timeout=60)
    finally:
        for reader in readers:
            await reader.stop()

    # Every publisher finished: no transaction was aborted by another (asyncio.gather
    # would have raised its error), and the log holds exactly what committed.
    expected = {(c, json.dumps(data)) for _, _, events in committed for c, data in events}
    logged = {(c, json.dumps(data)) for c, events in log.items() for _, data in events}
    assert logged == expected, f"seed {seed}"
    assert sum(len(events) for events in log.values()) == len(expected), f"seed {seed}"
    assert holes == [], f"seed {seed}"
    for events in log.values():
        assert [seq for seq, _ in events] == list(range(1, len(events) + 1)), f"seed {seed}"

    seq_of = {(c, json.dumps(data)): seq for c, events in log.items() for seq, data in events}
    position: dict[str, list[tuple[int, tuple[int, int]]]] = defaultdict(list)
    for number, tx, published in committed:
        per_channel: dict[str, list[int]] = defaultdict(list)
        for name, data in published:
            per_channel[name].append(seq_of[name, json.dumps(data)])
        for channel, seqs in per_channel.items():
            # Consecutive, in publish order.
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"seed {seed}"
            position[channel].append((seqs[0], (number, tx)))
    edges: dict[tuple[int, int], set[tuple[int, int]]] = defaultdict(set)
    for entries in position.values():
        entries.sort()
        for (_, before), (_, after) in itertools.pairwise(entries):
            edges[before].add(after)
    assert not has_cycle(edges), f"seed {seed}: the channels disagree on the commit order"

    # What every stream received: its channel's log, exactly, in order.
    for reader, channel in zip(readers, CHANNELS, strict=True):
        assert reader.payloads() == [data for _, data in log[channel]], f"seed {seed}"
