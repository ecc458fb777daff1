"""Fan-out: N streams on one channel, events published one at a time, server process measured.

For pgsse and for the bare loop in turn, in the same run:

- **memory per stream**: RSS after N streams are live minus RSS after a warm-up stream;
- **CPU per delivered event**: the server's user+system CPU while ``events`` events are each
  delivered to all N streams, divided by the deliveries the clients counted. Each event is
  published once the previous one has reached every probe stream, and 20 ms later, so
  nothing is coalesced: this is the cost of one event to one stream, the unfavourable case
  for pgsse;
- **latency**: publish (``time.monotonic()`` in the event) to the client's socket read, on
  up to 200 probe streams spread over the N (see :mod:`bench.swarm`), and the time each
  event took to reach every probe;
- **PostgreSQL connections** held by the server with N streams open (peak and at rest);
- **NOTIFY on another channel**: publishes/s by one publisher on a channel no stream follows,
  while the server's listening connections are open (compared with the naive server).
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.clients import Swarm
from bench.database import BenchDatabase
from bench.publisher import close_django_connections, publish_for, publish_timed
from bench.servers import CHANNEL, STREAM_PATH, ServerProcess

#: The channel of the NOTIFY-contention measure: no stream follows it.
OTHER_CHANNEL = "room:bench-elsewhere"


@dataclass
class FanoutResult:
    server: str
    streams_requested: int
    streams_live: int
    streams_refused: int
    streams_failed: int
    open_seconds: float
    rss_per_stream_bytes: float
    threads: int
    idle_cpu_per_second: float
    events: int
    deliveries: int
    deliveries_expected: int
    cpu_per_delivery_us: float | None
    client_cpu_share: float
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    latency_probes: int = 0
    #: Median time of the ``publish()`` call itself (INSERT, NOTIFY, commit).
    publish_ms: float = 0.0
    closed_by_server: int = 0
    backends_peak: int = 0
    backends_at_rest: int = 0
    other_channel_publishes_per_second: float = 0.0
    #: The garbage collector's pauses over the server's life (pgsse only).
    gc_pauses: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class BackendSampler:
    """Samples the bench database's connection count in a thread; keeps the peak."""

    def __init__(self, database: BenchDatabase, interval: float = 0.2) -> None:
        self.database = database
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BackendSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.database.backends())


def run(
    kind: str,
    database: BenchDatabase,
    streams: int,
    events: int,
    elsewhere_seconds: float,
    cap: int = 0,
    environment: dict[str, str] | None = None,
) -> FanoutResult:
    """Measure server ``kind`` ("pgsse", "bare" or "naive") with ``streams`` streams.

    ``environment`` is added to the server's (``PGSSE_BENCH_GC="off"``: see bench.gc_timing).
    """
    close_django_connections()  # the driver's own connection must not be counted
    server_process = ServerProcess(kind, database, cap, **(environment or {}))
    with server_process as server, contextlib.ExitStack() as stack:
        server.warm_up()
        time.sleep(0.5)
        before = server.usage()
        with BackendSampler(database) as sampler:
            swarm = stack.enter_context(Swarm(server.port, STREAM_PATH, streams))
        opened = swarm.opened
        live, probes = int(opened["live"]), int(opened["probes"])
        time.sleep(1.0)  # let the server settle (threads, allocator) before measuring
        at_rest = database.backends()
        loaded = server.usage()
        time.sleep(2.0)
        idle_cpu = (server.usage().cpu_seconds - loaded.cpu_seconds) / 2.0
        swarm.ask("reset")
        server_cpu = server.usage().cpu_seconds
        client_cpu = swarm.usage().cpu_seconds
        started = time.monotonic()
        publish_seconds = _publish_paced(swarm, events, probes)
        time.sleep(0.3)  # the last writes to streams that are not probes
        elapsed = time.monotonic() - started
        server_cpu = server.usage().cpu_seconds - server_cpu
        client_cpu = swarm.usage().cpu_seconds - client_cpu
        delivered = _drain(swarm, events * live)
        report = swarm.ask("report")
        elsewhere = publish_for(OTHER_CHANNEL, elsewhere_seconds) if elsewhere_seconds else 0.0
        close_django_connections()
        peak = sampler.peak
    gc_pauses = [line for line in server.output().splitlines() if line.startswith("gc ")]
    return FanoutResult(
        server=kind,
        streams_requested=streams,
        streams_live=live,
        streams_refused=int(opened["refused"]),
        streams_failed=int(opened["failed"]),
        open_seconds=float(opened["seconds"]),
        rss_per_stream_bytes=(loaded.rss_bytes - before.rss_bytes) / max(live, 1),
        threads=loaded.threads,
        idle_cpu_per_second=idle_cpu,
        events=events,
        deliveries=delivered,
        deliveries_expected=events * live,
        cpu_per_delivery_us=server_cpu / delivered * 1e6 if delivered else None,
        client_cpu_share=client_cpu / elapsed if elapsed else 0.0,
        latency_ms={
            key: report[key]
            for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "all_probes_p50_ms")
        },
        latency_probes=probes,
        publish_ms=statistics.median(publish_seconds) * 1000,
        closed_by_server=int(report["closed_by_server"]),
        backends_peak=max(peak, at_rest),
        backends_at_rest=at_rest,
        other_channel_publishes_per_second=elsewhere,
        gc_pauses=gc_pauses,
    )


def _publish_paced(swarm: Swarm, events: int, probes: int, timeout: float = 10.0) -> list[float]:
    """Publish ``events`` events, each once the previous one reached every probe stream.

    Returns how long each ``publish()`` call took.
    """
    received = 0
    durations = []
    for number in range(1, events + 1):
        durations.append(publish_timed(CHANNEL))
        deadline = time.monotonic() + timeout
        while received < number * probes and time.monotonic() < deadline:
            time.sleep(0.002)
            received = int(swarm.ask("count")["probe_received"])
        time.sleep(0.02)  # a quiet gap: the next event must not find this one still queued
    return durations


def _drain(swarm: Swarm, expected: int, timeout: float = 30.0) -> int:
    """Read what the other streams hold; return every delivery counted."""
    swarm.ask("drain")
    deadline = time.monotonic() + timeout
    received = int(swarm.ask("count")["received"])
    while received < expected and time.monotonic() < deadline:
        time.sleep(0.05)
        received = int(swarm.ask("count")["received"])
    return received
