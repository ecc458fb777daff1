"""Many workers on one PostgreSQL: publish rate and delivery latency by listener count.

Every pgsse worker holds one LISTEN connection. Before PostgreSQL 19, every commit that
notified wakes *every* backend that LISTENs anywhere in the database (each must read the
shared queue to find what is its own), whatever the channels; and notifying commits are
serialised on one lock. So the number of workers weighs on publishing even where no
worker follows the channel.

For 1, 8, 32 and 64 listeners (light listener-only clients: one process holding that many
PostgreSQL connections, each LISTENing on a channel of its own, as that many workers
would), publishers publish round-robin over those channels (each event reaches one
listener; the others are woken for nothing), in both ``PGSSE["NOTIFY"]`` modes, taking
turns. Reported per count and mode: publishes per second (until the notifier has sent
everything), and the latency from just before ``publish()`` to the listener's read of
the notification (p50, p99, over every event).

The listener process is ``python -m bench.listeners <database url> <count>``: it prints
``ready`` once every LISTEN is in place, then, on each line ``report`` on its input, the
latencies seen since the last report as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.database import BenchDatabase
from bench.publisher import timed_data

COUNTS = (1, 8, 32, 64)
MODES = ("after_commit", "in_transaction")


@dataclass
class ListenersResult:
    listeners: int
    mode: str
    publishers: int
    seconds: float
    publishes: int
    per_second: float
    p50_ms: float | None
    p99_ms: float | None
    #: Notifications the listeners read, against the publishes (they should agree).
    received: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def channel(number: int) -> str:
    return f"wide:{number}"


def run(
    database: BenchDatabase,
    counts: tuple[int, ...] = COUNTS,
    publishers: int = 8,
    seconds: float = 4.0,
    rounds: int = 2,
) -> list[ListenersResult]:
    results = []
    for count in counts:
        with _Listeners(database, count) as listeners:
            slices: dict[str, list[ListenersResult]] = {mode: [] for mode in MODES}
            for _ in range(rounds):
                for mode in MODES:
                    slices[mode].append(
                        _measure(listeners, count, mode, publishers, seconds / rounds)
                    )
            for mode in MODES:
                parts = slices[mode]
                results.append(
                    ListenersResult(
                        listeners=count,
                        mode=mode,
                        publishers=publishers,
                        seconds=sum(p.seconds for p in parts),
                        publishes=sum(p.publishes for p in parts),
                        per_second=statistics.median(p.per_second for p in parts),
                        p50_ms=_median([p.p50_ms for p in parts]),
                        p99_ms=_median([p.p99_ms for p in parts]),
                        received=sum(p.received for p in parts),
                    )
                )
    return results


def _median(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def _measure(
    listeners: _Listeners, count: int, mode: str, publishers: int, seconds: float
) -> ListenersResult:
    from django.conf import settings
    from django.db import connections
    from django.test import override_settings

    import pgsse
    from pgsse.notifier import get_notifier

    published = [0] * publishers
    window = [0.0, 0.0]

    def open_window() -> None:
        window[0] = time.monotonic()
        window[1] = window[0] + seconds

    ready = threading.Barrier(publishers + 1, action=open_window)

    def publish_loop(index: int) -> None:
        try:
            pgsse.publish(channel(index % count), "e", timed_data())  # connects: not counted
            ready.wait(60)
            sent, number = 0, index
            while time.monotonic() < window[1]:
                pgsse.publish(channel(number % count), "e", timed_data())
                number += publishers
                sent += 1
            published[index] = sent
        finally:
            connections.close_all()

    listeners.report()  # forget the warm-up
    wanted = {**getattr(settings, "PGSSE", {}), "NOTIFY": mode}
    with override_settings(PGSSE=wanted):
        threads = [threading.Thread(target=publish_loop, args=(i,)) for i in range(publishers)]
        for thread in threads:
            thread.start()
        ready.wait(60)
        for thread in threads:
            thread.join()
        get_notifier().flush(60)
        elapsed = time.monotonic() - window[0]
    total = sum(published)
    latencies = listeners.report(expect=total + publishers)
    ordered = sorted(latencies)
    return ListenersResult(
        listeners=count,
        mode=mode,
        publishers=publishers,
        seconds=elapsed,
        publishes=total,
        per_second=total / elapsed,
        p50_ms=ordered[len(ordered) // 2] * 1000 if ordered else None,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else None,
        received=len(latencies),
    )


class _Listeners:
    """The listener process, started and stopped with the block."""

    def __init__(self, database: BenchDatabase, count: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.listeners", database.url, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def __enter__(self) -> _Listeners:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "ready":
            self.process.kill()
            raise RuntimeError(f"the listeners did not start: {line!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait(10)

    def report(self, expect: int = 0, timeout: float = 30.0) -> list[float]:
        """The latencies read since the last report, once ``expect`` of them have come (or
        ``timeout`` passed)."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"report {expect} {timeout}\n")
        self.process.stdin.flush()
        return [float(value) for value in json.loads(self.process.stdout.readline())]


async def _listen(url: str, count: int) -> None:
    import psycopg

    from pgsse.channels import pg_channel_name
    from pgsse.log import parse_payload

    latencies: list[float] = []
    arrived = asyncio.Event()

    async def one(number: int) -> None:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        name = psycopg.sql.Identifier(pg_channel_name(channel(number)))
        await conn.execute(psycopg.sql.SQL("LISTEN {}").format(name))
        connected.append(conn)
        async for notify in conn.notifies():
            now = time.monotonic()
            inline = parse_payload(notify.payload)[2]
            if inline is not None:
                latencies.append(now - json.loads(inline[1])["t"])
                arrived.set()

    connected: list[Any] = []
    tasks = [asyncio.create_task(one(number)) for number in range(count)]
    while len(connected) < count:
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        _, expect, timeout = line.split()
        deadline = time.monotonic() + float(timeout)
        while len(latencies) < int(expect) and (left := deadline - time.monotonic()) > 0:
            arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), left)
        print(json.dumps(latencies), flush=True)
        latencies.clear()
    for task in tasks:
        task.cancel()


if __name__ == "__main__":
    asyncio.run(_listen(sys.argv[1], int(sys.argv[2])))
