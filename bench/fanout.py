"""Fan-out: N streams on one channel, a server measured while events reach every stream.

For each server in turn, in the same run:

- **memory per stream**: RSS after N streams are live minus RSS after warm-up streams;
- **CPU per delivered event**: the server's user+system CPU while the events are
  delivered, divided by the deliveries the client counted. In the ``paced`` mode each event
  is published once the previous one has reached every probe stream, and 20 ms later, so
  nothing is coalesced: the cost of one event to one stream. In the ``burst`` mode the
  events are published back to back without waiting for any delivery, faster than one
  fan-out round;
- **latency**: publish (``time.monotonic()`` in the event) to the client's socket read, on
  up to 200 probe streams spread over the N (see :mod:`bench.swarm`), and the time each
  event took to reach every probe;
- **completeness**: every stream must receive every event once, in order;
- **PostgreSQL connections** held by the server with N streams open (peak and at rest);
- **NOTIFY on another channel** (pgsse and the naive server): publishes/s by one publisher
  on a channel no stream follows, while the server's listening connections are open.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.chat_users import chat_channel
from bench.clients import Swarm
from bench.database import BenchDatabase
from bench.publisher import Publisher, close_django_connections, publish_for, publisher_for
from bench.servers import CHANNEL, KINDS, Server

#: The channel of the NOTIFY-contention measure: no stream follows it.
OTHER_CHANNEL = "room:bench-elsewhere"
#: How long one event may take to reach every probe before the run is called timed out.
EVENT_TIMEOUT = 10.0


def open_timeout(streams: int) -> float:
    """Seconds the client gives the server to open every stream: 2 minutes, or 15 ms each.

    The slowest server measured so far (the chat's room stream under Django's handler)
    opens about 80 streams a second; past this, a server is reported as timing out.
    """
    return max(120.0, streams * 0.015)


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
    #: Median time of the publish call itself (for pgsse: INSERT, NOTIFY, commit).
    publish_ms: float = 0.0
    closed_by_server: int = 0
    backends_peak: int = 0
    backends_at_rest: int = 0
    other_channel_publishes_per_second: float = 0.0
    #: The garbage collector's pauses over the server's life (uvicorn servers).
    gc_pauses: list[str] = field(default_factory=list)
    mode: str = "paced"
    workers: int = 1
    round: int = 1
    #: Streams that received every event exactly once, in order.
    streams_complete: int = 0
    streams_out_of_order: int = 0
    #: Empty when every stream opened and got every event; otherwise what went wrong.
    failure: str = ""
    server_errors: list[str] = field(default_factory=list)
    #: Server CPU while the streams opened (and one second after), per stream opened.
    open_cpu_per_stream_us: float = 0.0
    #: The longest full (generation 2) collection of any worker while the streams opened,
    #: and once they were all open (until the last event was checked); None: there was none.
    gc_full_opening_ms: float | None = None
    gc_full_open_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def ok(self) -> bool:
        return not self.failure


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


def failed(kind: str, streams: int, failure: str, **extra: Any) -> FanoutResult:
    """The result of a run that measured nothing: why, in ``failure``."""
    return FanoutResult(
        server=kind,
        streams_requested=streams,
        streams_live=0,
        streams_refused=0,
        streams_failed=streams,
        open_seconds=0.0,
        open_cpu_per_stream_us=0.0,
        rss_per_stream_bytes=0.0,
        threads=0,
        idle_cpu_per_second=0.0,
        events=0,
        deliveries=0,
        deliveries_expected=0,
        cpu_per_delivery_us=None,
        client_cpu_share=0.0,
        failure=failure,
        **extra,
    )


def run(
    kind: str,
    database: BenchDatabase,
    streams: int,
    events: int,
    elsewhere_seconds: float = 0.0,
    cap: int = 0,
    environment: dict[str, str] | None = None,
    mode: str = "paced",
    workers: int = 1,
    round_: int = 1,
    cookies: Path | None = None,
) -> FanoutResult:
    """Measure server ``kind`` (see :data:`bench.servers.KINDS`) with ``streams`` streams.

    ``environment`` is added to the server's (``PGSSE_BENCH_GC="off"``: see
    bench.uvicorn_worker). ``cookies``: a file of one ``Cookie`` header value per line, given
    to the streams in turn (the chat's sessions).
    """
    close_django_connections()  # the driver's own connection must not be counted
    extra: dict[str, Any] = {"mode": mode, "workers": workers, "round": round_}
    server = Server(kind, database, workers, cap, **(environment or {}))
    first_cookie = cookies.read_text().split()[0] if cookies else ""
    try:
        server.start()
    except RuntimeError as error:
        return failed(kind, streams, f"did not start: {str(error).splitlines()[0]}", **extra)
    with server, contextlib.ExitStack() as stack:
        server.warm_up(first_cookie)
        time.sleep(0.5)
        before = server.usage()
        opening_from = time.monotonic()
        with BackendSampler(database) as sampler:
            swarm = stack.enter_context(
                Swarm(
                    server.port,
                    KINDS[kind].path,
                    streams,
                    connect_timeout=open_timeout(streams),
                    cookies=cookies,
                )
            )
            opened = swarm.opened
            open_from = time.monotonic()
            live, probes = int(opened["live"]), int(opened["probes"])
            time.sleep(1.0)  # let the server settle (threads, allocator) before measuring
            at_rest = database.backends()
            loaded = server.usage()
            time.sleep(2.0)
            idle_cpu = (server.usage().cpu_seconds - loaded.cpu_seconds) / 2.0
            swarm.ask("expect 1")
            channel = chat_channel() if kind == "chat" else CHANNEL
            publisher = publisher_for(kind, server.port, channel)
            server_cpu = server.usage().cpu_seconds
            client_cpu = swarm.usage().cpu_seconds
            started = time.monotonic()
            refused = ""
            try:
                if mode == "burst":
                    publish_seconds, timed_out = _publish_burst(swarm, publisher, events, probes)
                else:
                    publish_seconds, timed_out = _publish_paced(swarm, publisher, events, probes)
            except (RuntimeError, OSError) as error:  # the server would not take an event
                publish_seconds, timed_out, refused = [], events, f"publishing failed: {error}"
            time.sleep(0.3)  # the last writes to streams that are not probes
            elapsed = time.monotonic() - started
            server_cpu = server.usage().cpu_seconds - server_cpu
            client_cpu = swarm.usage().cpu_seconds - client_cpu
            publisher.close()
            delivered = _drain(swarm, events * live)
            check = swarm.ask(f"check {events}")
            report = swarm.report()
            elsewhere = 0.0
            if elsewhere_seconds and kind in ("pgsse", "naive"):
                elsewhere = publish_for(OTHER_CHANNEL, elsewhere_seconds)
            close_django_connections()
            peak = sampler.peak
            open_until = time.monotonic()
    output = server.output()
    full = _full_collections(output)
    failure = _failure(streams, opened, check, timed_out, int(report["closed_by_server"]))
    failure = "; ".join(part for part in (refused, failure) if part)
    return FanoutResult(
        server=kind,
        streams_requested=streams,
        streams_live=live,
        streams_refused=int(opened["refused"]),
        streams_failed=int(opened["failed"]),
        open_seconds=float(opened["seconds"]),
        open_cpu_per_stream_us=(loaded.cpu_seconds - before.cpu_seconds) / max(live, 1) * 1e6,
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
        publish_ms=statistics.median(publish_seconds) * 1000 if publish_seconds else 0.0,
        closed_by_server=int(report["closed_by_server"]),
        backends_peak=max(peak, at_rest),
        backends_at_rest=at_rest,
        other_channel_publishes_per_second=elsewhere,
        gc_pauses=[line for line in output.splitlines() if line.startswith("gc generation")],
        gc_full_opening_ms=_longest(full, opening_from, open_from),
        gc_full_open_ms=_longest(full, open_from, open_until),
        streams_complete=int(check["complete"]),
        streams_out_of_order=int(check["out_of_order"]),
        failure=failure,
        server_errors=_errors(output),
        **extra,
    )


def _full_collections(output: str) -> list[tuple[float, float]]:
    """Every worker's full collections, as (CLOCK_MONOTONIC at the start, milliseconds)."""
    pauses = []
    for line in output.splitlines():
        if line.startswith("gc full at: "):
            for pause in line.removeprefix("gc full at: ").split():
                at, milliseconds = pause.split(":")
                pauses.append((float(at), float(milliseconds)))
    return pauses


def _longest(pauses: list[tuple[float, float]], start: float, end: float) -> float | None:
    return max((ms for at, ms in pauses if start <= at < end), default=None)


def _failure(
    streams: int, opened: dict[str, Any], check: dict[str, Any], timed_out: int, closed: int
) -> str:
    problems = []
    if int(opened["live"]) < streams:
        why = ", ".join(f"{count} {error}" for error, count in opened.get("errors", {}).items())
        problems.append(
            f"{opened['live']} of {streams} streams opened ({opened['refused']} refused,"
            f" {opened['failed']} failed or timed out{': ' + why if why else ''})"
        )
    if timed_out:
        problems.append(f"{timed_out} event(s) did not reach every probe in {EVENT_TIMEOUT:.0f} s")
    if closed:
        problems.append(f"{closed} stream(s) closed by the server")
    incomplete = int(check["streams"]) - int(check["complete"])
    if incomplete:
        problems.append(
            f"{incomplete} stream(s) missed events ({check['out_of_order']} with gaps,"
            f" duplicates or reordering; {check['received']} of {check['expected']} delivered)"
        )
    return "; ".join(problems)


def _errors(output: str, limit: int = 5) -> list[str]:
    """The first distinct error lines a server logged (tracebacks' last lines)."""
    found: list[str] = []
    for line in output.splitlines():
        text = line.strip()
        if (
            ("Error" in text or "error" in text)
            and not text.startswith("gc ")
            and text not in found
        ):
            found.append(text[:200])
        if len(found) >= limit:
            break
    return found


def _publish_paced(
    swarm: Swarm, publisher: Publisher, events: int, probes: int
) -> tuple[list[float], int]:
    """Publish ``events`` events, each once the previous one reached every probe stream.

    Returns how long each publish call took, and how many events timed out (two in a row
    end the run: the server is not keeping up).
    """
    durations: list[float] = []
    timed_out = in_a_row = 0
    for number in range(1, events + 1):
        durations.append(publisher.publish(number))
        answer = swarm.wait_for("probe_received", number * probes, EVENT_TIMEOUT)
        if int(answer["probe_received"]) < number * probes:
            timed_out += 1
            in_a_row += 1
            if in_a_row >= 2:
                timed_out += events - number
                break
        else:
            in_a_row = 0
        time.sleep(0.02)  # a quiet gap: the next event must not find this one still queued
    return durations, timed_out


def _publish_burst(
    swarm: Swarm, publisher: Publisher, events: int, probes: int
) -> tuple[list[float], int]:
    """Publish ``events`` events back to back, then wait until every probe has them all."""
    durations = [publisher.publish(number) for number in range(1, events + 1)]
    timeout = EVENT_TIMEOUT + events * 0.1
    answer = swarm.wait_for("probe_received", events * probes, timeout)
    return durations, (0 if int(answer["probe_received"]) >= events * probes else 1)


def _drain(swarm: Swarm, expected: int, stall: float = 5.0) -> int:
    """Read what the other streams hold; return every delivery counted.

    Waits while deliveries still arrive: until ``expected``, or ``stall`` seconds without one.
    """
    swarm.ask("drain")
    received, last_change = -1, time.monotonic()
    while time.monotonic() - last_change < stall:
        now = int(swarm.ask("count")["received"])
        if now >= expected:
            return now
        if now != received:
            received, last_change = now, time.monotonic()
        time.sleep(0.05)
    return received
