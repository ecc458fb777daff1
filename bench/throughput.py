"""Publish throughput and NOTIFY contention: 1, 8 and 32 concurrent publishers, same run.

Each publisher is a thread of the driver with its own Django connection, publishing in
autocommit (one transaction per event) as fast as it can for ``seconds``. Variants:

- ``insert``: the baseline, a plain INSERT of the same row into a copy of the event table
  (same columns, indexes and data), no NOTIFY, no channel row;
- ``insert_prepared``: the same INSERT with its parameters bound by the server and the
  statement prepared, as pgsse's own appends are (Django's cursors quote parameters into
  the SQL and prepare nothing): the baseline at its fastest;
- ``insert_in_transaction``: the plain INSERT inside ``transaction.atomic()``, the
  baseline of ``publish_in_transaction`` (BEGIN and COMMIT are round trips of their own);
- ``insert_notify``: the same INSERT plus ``pg_notify`` with pgsse's payload (NOTIFY's cost
  alone: what every notifying transaction pays, commits serialised on the notify lock);
- ``publish``: ``pgsse.publish`` with one channel per publisher, in autocommit (sequenced
  by its own statement), the notification sent after commit by the process's notifier;
- ``publish_in_transaction``: the same inside ``transaction.atomic()`` (staged, sequenced by
  the commit trigger);
- ``publish_notify_in_transaction``: ``pgsse.publish`` with ``PGSSE["NOTIFY"] =
  "in_transaction"``, each transaction notifying itself (pgsse before the notifier);
- ``publish_one_channel``: ``pgsse.publish`` with every publisher on the same channel (they
  queue on that channel's row lock at commit: the price of gap-free, commit-ordered seqs).

All publishers share one Python process (the GIL) and, with PostgreSQL, the machine's two
cores; the driver's CPU share is reported so that a client-bound figure shows as such.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import resource
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.publisher import timed_data
from pgsse.notifier import get_notifier

VARIANTS = (
    "insert",
    "insert_prepared",
    "insert_in_transaction",
    "insert_notify",
    "publish",
    "publish_in_transaction",
    "publish_notify_in_transaction",
    "publish_one_channel",
)
BASELINE = "insert"

CREATE_PLAIN_TABLE = "CREATE TABLE IF NOT EXISTS bench_plain (LIKE pgsse_event INCLUDING ALL)"
INSERT_SQL = (
    "INSERT INTO bench_plain (channel, seq, type, data, created_at) VALUES (%s, %s, %s, %s, now())"
)
INSERT_NOTIFY_SQL = (
    "WITH appended AS (INSERT INTO bench_plain (channel, seq, type, data, created_at)"
    " VALUES (%s, %s, %s, %s, now()) RETURNING seq)"
    " SELECT pg_notify(%s, seq::text || %s) FROM appended"
)

_runs = itertools.count()


@dataclass
class ThroughputResult:
    variant: str
    publishers: int
    seconds: float
    publishes: int
    per_second: float
    driver_cpu_share: float
    #: Publishes/s of every slice of this variant, in the order they ran.
    slices: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _operation(variant: str, publisher: int) -> Callable[[], None]:
    """One publish of ``variant`` by publisher number ``publisher``, on a fresh channel."""
    from django.db import connection, transaction

    import pgsse
    from pgsse.channels import pg_channel_name
    from pgsse.connection import server_bound_cursor
    from pgsse.log import notify_tail

    run = next(_runs)
    channel = (
        f"room:bench-pub-{run}"
        if variant == "publish_one_channel"
        else (f"room:bench-pub-{run}-{publisher}")
    )
    seqs = itertools.count(1)

    if variant in ("publish", "publish_one_channel"):

        def publish() -> None:
            pgsse.publish(channel, "e", timed_data())

        return publish

    if variant == "publish_in_transaction":

        def publish_in_transaction() -> None:
            with transaction.atomic():
                pgsse.publish(channel, "e", timed_data())

        return publish_in_transaction

    if variant == "publish_notify_in_transaction":  # measure() sets PGSSE["NOTIFY"]

        def publish_notifying() -> None:
            pgsse.publish(channel, "e", timed_data())

        return publish_notifying

    def insert() -> None:
        text = json.dumps(timed_data(), separators=(",", ":"))
        params: tuple[str | int, ...] = (channel, next(seqs), "e", text)
        statement = INSERT_SQL
        if variant == "insert_notify":
            statement = INSERT_NOTIFY_SQL
            params += (pg_channel_name(channel), notify_tail(channel, "e", text))
        if variant == "insert_prepared":
            with server_bound_cursor(connection) as cursor:
                cursor.execute(statement, params)
            return
        if variant == "insert_in_transaction":
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement, params)
            return
        with connection.cursor() as cursor:
            cursor.execute(statement, params)

    return insert


def measure(variant: str, publishers: int, seconds: float) -> ThroughputResult:
    counts = [0] * publishers
    window = [0.0, 0.0]  # start and deadline, set when every publisher is connected

    def open_window() -> None:
        window[0] = time.monotonic()
        window[1] = window[0] + seconds

    ready = threading.Barrier(publishers + 1, action=open_window)

    def publish_loop(index: int) -> None:
        from django.db import connections

        try:
            operation = _operation(variant, index)
            operation()  # connects, creates the channel row: not counted
        except BaseException:
            ready.abort()  # the others, and the driver, stop waiting
            connections.close_all()
            raise
        try:
            ready.wait(60)
            count = 0
            while time.monotonic() < window[1]:
                operation()
                count += 1
            counts[index] = count
        finally:
            connections.close_all()

    threads = [threading.Thread(target=publish_loop, args=(i,)) for i in range(publishers)]
    with _notify_mode(variant):
        for thread in threads:
            thread.start()
        ready.wait(60)
        cpu_before = _process_cpu()
        for thread in threads:
            thread.join()
        # Notifications still to send count against the variant that left them.
        get_notifier().flush(60)
        cpu_used = _process_cpu() - cpu_before
        elapsed = time.monotonic() - window[0]
    total = sum(counts)
    return ThroughputResult(
        variant=variant,
        publishers=publishers,
        seconds=elapsed,
        publishes=total,
        per_second=total / elapsed,
        driver_cpu_share=cpu_used / elapsed,
    )


def _notify_mode(variant: str) -> contextlib.AbstractContextManager[object]:
    """``PGSSE["NOTIFY"] = "in_transaction"`` for the variant that measures it, for every
    thread at once (overriding settings is process-wide: never inside the threads)."""
    if variant != "publish_notify_in_transaction":
        return contextlib.nullcontext()
    from django.conf import settings
    from django.test import override_settings

    return override_settings(PGSSE={**getattr(settings, "PGSSE", {}), "NOTIFY": "in_transaction"})


def run(concurrency: tuple[int, ...], seconds: float, rounds: int) -> list[ThroughputResult]:
    """Each variant for ``seconds`` in all, cut into ``rounds`` slices that take turns.

    Taking turns spreads the machine's noise over every variant alike; the figure kept
    for each variant is its median slice.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(CREATE_PLAIN_TABLE)
    connection.close()
    results = []
    for publishers in concurrency:
        slices: dict[str, list[ThroughputResult]] = {variant: [] for variant in VARIANTS}
        for _ in range(rounds):
            for variant in VARIANTS:
                slices[variant].append(measure(variant, publishers, seconds / rounds))
        for variant in VARIANTS:
            parts = slices[variant]
            results.append(
                ThroughputResult(
                    variant=variant,
                    publishers=publishers,
                    seconds=sum(part.seconds for part in parts),
                    publishes=sum(part.publishes for part in parts),
                    per_second=statistics.median(part.per_second for part in parts),
                    driver_cpu_share=statistics.mean(part.driver_cpu_share for part in parts),
                    slices=[round(part.per_second) for part in parts],
                )
            )
    return results


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
