"""The reconnect storm: N streams, 100 events behind, reconnect at once with Last-Event-ID.

The streams open, receive event 1, and all drop their connection. ``behind`` events are
published while they are away; then every stream reconnects at the same moment, each
sending the id of event 1. Measured:

- the time from the reconnect until every stream has received the last missed event
  (caught up), and until every stream has also received one event published after that
  (live);
- that every stream received every missed event and the live one exactly once, in order;
- the reads of the event log the server made meanwhile: pgsse's own count of log reads
  (``log_reads`` of ``/stats/``, the test project's view of the hub's counters) and, for
  every server, the scans PostgreSQL counted on the table it replays from;
- the server's CPU from the reconnect until the live event arrived.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

from bench.clients import Swarm
from bench.database import BenchDatabase
from bench.publisher import close_django_connections, publisher_for
from bench.servers import CHANNEL, KINDS, Server

#: PostgreSQL's backends flush their statistics at most every second, and an idle one
#: after 10 s: wait this long before reading the table scans.
STATISTICS_FLUSH = 11.0


@dataclass
class StormResult:
    server: str
    streams_requested: int
    streams_live: int
    behind: int
    reconnected: int
    caught_up: int
    caught_up_seconds: float | None
    live_seconds: float | None
    streams_complete: int
    streams_out_of_order: int
    log_reads: int | None
    table_reads: int
    server_cpu_seconds: float
    failure: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def failed(kind: str, streams: int, behind: int, error: Exception) -> StormResult:
    """The result of a storm that broke down before it could be measured."""
    return StormResult(
        server=kind,
        streams_requested=streams,
        streams_live=0,
        behind=behind,
        reconnected=0,
        caught_up=0,
        caught_up_seconds=None,
        live_seconds=None,
        streams_complete=0,
        streams_out_of_order=0,
        log_reads=None,
        table_reads=0,
        server_cpu_seconds=0.0,
        failure=f"broke down: {str(error).splitlines()[0] if str(error) else type(error).__name__}",
    )


def _hub_log_reads(port: int) -> int | None:
    """pgsse's log reads so far (tests/urls.py's /stats/), or None for other servers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/", timeout=5) as answer:
            stats = json.loads(answer.read())
    except (OSError, ValueError):
        return None
    return int(stats["log_reads"]) if "log_reads" in stats else None


def run(
    kind: str, database: BenchDatabase, streams: int, behind: int = 100, timeout: float = 60.0
) -> StormResult:
    close_django_connections()
    table = KINDS[kind].log_table
    with Server(kind, database) as server:
        server.warm_up()
        # Every stream reads everything here: all are probes, none is held.
        with Swarm(server.port, KINDS[kind].path, streams, probes=streams) as swarm:
            live = int(swarm.opened["live"])
            publisher = publisher_for(kind, server.port, CHANNEL)
            swarm.ask("expect 1")
            publisher.publish(1)
            swarm.wait_for("received", live, timeout)
            swarm.ask("disconnect")
            last = behind + 1
            for number in range(2, last + 1):
                publisher.publish(number)
            close_django_connections()
            time.sleep(STATISTICS_FLUSH)
            reads_before = database.table_reads(table)
            log_reads_before = _hub_log_reads(server.port)
            cpu_before = server.usage().cpu_seconds
            swarm.ask("expect 2")
            started = time.monotonic()
            swarm.ask(f"reconnect {last}")
            caught = swarm.wait_for("caught_up", live, timeout, command=f"count {last}")
            publisher.publish(last + 1)
            arrived = swarm.wait_for("caught_up", live, timeout, command=f"count {last + 1}")
            live_seconds = time.monotonic() - started
            cpu = server.usage().cpu_seconds - cpu_before
            check = swarm.ask(f"check {last + 1}")
            publisher.close()
            close_django_connections()
            log_reads_after = _hub_log_reads(server.port)
            time.sleep(STATISTICS_FLUSH)
            reads = database.table_reads(table) - reads_before
    reconnected = int(check["streams"])
    failure = []
    if live < streams:
        failure.append(f"{live} of {streams} streams opened")
    if int(check["complete"]) < live:
        failure.append(
            f"{live - int(check['complete'])} stream(s) did not get every event once, in order"
        )
    return StormResult(
        server=kind,
        streams_requested=streams,
        streams_live=live,
        behind=behind,
        reconnected=reconnected,
        caught_up=int(caught["caught_up"]),
        caught_up_seconds=caught["caught_up_seconds"],
        live_seconds=live_seconds if int(arrived["caught_up"]) >= live else None,
        streams_complete=int(check["complete"]),
        streams_out_of_order=int(check["out_of_order"]),
        log_reads=(
            log_reads_after - log_reads_before
            if log_reads_before is not None and log_reads_after is not None
            else None
        ),
        table_reads=reads,
        server_cpu_seconds=cpu,
        failure="; ".join(failure),
    )
