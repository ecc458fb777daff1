"""``python -m bench [--quick]``: run every benchmark, write bench/results/, print the tables.

Everything listens on 127.0.0.1, every phase is bounded, and every process started here
(servers, clients, the embedded PostgreSQL) is stopped on the way out, even on failure.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from bench import chat_posting, fanout, listeners, opening, peer_tables, storm, throughput
from bench.chat_users import create_readers
from bench.database import BenchDatabase
from bench.fanout import FanoutResult
from bench.machine import describe, load_average
from bench.procfs import raise_open_files_limit
from bench.publisher import close_django_connections, setup_django
from bench.report import headlines, write
from bench.results import Results
from bench.servers import KINDS, PG_SSE_CAPS, PGSSE_MAX_STREAMS

#: Connections the driver itself may need while a server holds the rest.
DRIVER_CONNECTIONS = 8
#: Servers measured unless ``--servers`` says otherwise (``pgsse-asgi`` on request only).
SERVERS = ("pgsse", "pgsse-takeover", "pgsse-plain", "chat", "pg-sse", "eventstream", "bare")
#: Servers that can run as two workers sharing a port (django-eventstream's fan-out is in
#: one process's memory; the chat's readers are measured in one worker).
MULTI_WORKER = ("pgsse", "pgsse-plain", "pgsse-asgi", "pg-sse", "bare")
#: Servers that hold a PostgreSQL connection per open stream: also measured at a count that
#: fits in max_connections.
CONNECTION_PER_STREAM = ("eventstream",)


@dataclass(frozen=True)
class Scale:
    #: Open streams in the fan-out benchmark, one worker, one series of rounds per count.
    streams: tuple[int, ...]
    #: Open streams on two workers sharing a port.
    two_workers: tuple[int, ...]
    servers: tuple[str, ...]
    events: int
    rounds: int
    burst_streams: int
    burst_events: int
    storm_streams: int
    storm_behind: int
    publish_seconds: float
    elsewhere_seconds: float
    publish_rounds: int
    publishers: tuple[int, ...] = (1, 8, 32)
    #: Messages posted through the chat's JSON API in a room of each size (0: skip).
    chat_posts: int = 200
    chat_members: tuple[int, ...] = (10, 10_000)
    #: Listening workers (one LISTEN connection each) in the many-workers phase.
    listeners: tuple[int, ...] = listeners.COUNTS
    #: Only the fan-out rounds (no naive server, no publish throughput).
    fanout_only: bool = False
    #: Run the pgsse servers with Python's cyclic garbage collector disabled (a diagnosis).
    pgsse_gc_off: bool = False
    #: Also copy the plot to docs/performance-streams.png.
    docs_plot: bool = False
    #: Opening (pgsse's stream and the chat's): clients opening as fast as a worker takes
    #: them, and clients of a reconnect wave started at ``wave_rate`` per second (0: skip).
    open_streams: int = 5000
    wave_clients: int = 10_000
    wave_rate: float = 1000.0
    #: Only the opening phase.
    opening_only: bool = False


QUICK = Scale(
    streams=(500,),
    two_workers=(),
    servers=SERVERS,
    events=20,
    rounds=1,
    burst_streams=500,
    burst_events=50,
    storm_streams=300,
    storm_behind=100,
    publish_seconds=2.0,
    elsewhere_seconds=2.0,
    publish_rounds=2,
    chat_posts=50,
    listeners=(1, 8),
    open_streams=1000,
    wave_clients=2000,
)
FULL = Scale(
    streams=(1000, 4000, 10000),
    two_workers=(20000,),
    servers=SERVERS,
    events=40,
    rounds=2,
    burst_streams=10000,
    burst_events=100,
    storm_streams=1000,
    storm_behind=100,
    publish_seconds=6.0,
    elsewhere_seconds=3.0,
    publish_rounds=3,
)


def parse_arguments(argv: list[str]) -> Scale:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small scale, a few minutes")
    parser.add_argument("--streams", type=int, nargs="+", help="stream counts, one worker")
    parser.add_argument(
        "--two-workers", type=int, nargs="*", help="stream counts on two workers (none: skip)"
    )
    parser.add_argument(
        "--servers", nargs="+", choices=sorted(KINDS), help=f"default: {' '.join(SERVERS)}"
    )
    parser.add_argument("--events", type=int, help="events per fan-out run")
    parser.add_argument("--rounds", type=int, help="rounds of every server per stream count")
    parser.add_argument("--burst-streams", type=int, help="streams of the burst runs (0: skip)")
    parser.add_argument("--burst-events", type=int, help="events per burst")
    parser.add_argument("--storm-streams", type=int, help="streams of the storm (0: skip)")
    parser.add_argument(
        "--fanout-only", action="store_true", help="skip the connection and publish benchmarks"
    )
    parser.add_argument(
        "--chat-posts", type=int, help="messages posted in the chat per room size (0: skip)"
    )
    parser.add_argument(
        "--open-streams", type=int, help="clients of the opening phase's open rate (0: skip)"
    )
    parser.add_argument(
        "--wave-clients", type=int, help="clients of the opening phase's wave (0: skip)"
    )
    parser.add_argument("--wave-rate", type=float, help="the wave's clients per second")
    parser.add_argument(
        "--opening-only", action="store_true", help="only the opening phase (pgsse, chat)"
    )
    parser.add_argument(
        "--pgsse-gc-off",
        action="store_true",
        help="diagnosis: disable the garbage collector in the pgsse servers",
    )
    parser.add_argument(
        "--docs-plot", action="store_true", help="also write docs/performance-streams.png"
    )
    arguments = parser.parse_args(argv)
    scale = QUICK if arguments.quick else FULL
    overrides: dict[str, object] = {
        name: getattr(arguments, name)
        for name in (
            "events",
            "rounds",
            "burst_streams",
            "burst_events",
            "storm_streams",
            "chat_posts",
            "open_streams",
            "wave_clients",
            "wave_rate",
        )
        if getattr(arguments, name) is not None
    }
    for name in ("fanout_only", "pgsse_gc_off", "docs_plot", "opening_only"):
        overrides[name] = getattr(arguments, name)
    for name in ("streams", "two_workers", "servers"):
        if getattr(arguments, name) is not None:
            overrides[name] = tuple(getattr(arguments, name))
    return Scale(**{**asdict(scale), **overrides})


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Sweep:
    """Runs each server at growing counts; a server that fails at a count is not asked for more."""

    def __init__(self, scale: Scale, database: BenchDatabase, results: Results) -> None:
        self.scale = scale
        self.database = database
        self.results = results
        self.cookies: Path | None = None
        #: Per server and number of workers: the streams at which it first failed.
        self.stopped: dict[tuple[str, int], int] = {}

    def skip(self, kind: str, streams: int, workers: int) -> bool:
        """Whether ``kind`` already failed at no more streams (per worker, in one worker)."""
        failed = [self.stopped.get((kind, workers))]
        if workers > 1:  # one worker that failed at the share each would have
            one = self.stopped.get((kind, 1))
            failed.append(one * workers if one is not None else None)
        return any(count is not None and count <= streams for count in failed)

    def measure(
        self, kind: str, streams: int, mode: str = "paced", workers: int = 1, round_: int = 1
    ) -> FanoutResult | None:
        if self.skip(kind, streams, workers):
            return None
        progress(f"{mode} round {round_}: {kind}, {streams} streams on {workers} worker(s)")
        gc_off = self.scale.pgsse_gc_off and kind.startswith("pgsse")
        try:
            result = fanout.run(
                kind,
                self.database,
                streams,
                self.scale.burst_events if mode == "burst" else self.scale.events,
                self.scale.elsewhere_seconds,
                environment={"PGSSE_BENCH_GC": "off"} if gc_off else {},
                mode=mode,
                workers=workers,
                round_=round_,
                cookies=self.cookies if kind == "chat" else None,
            )
        except (RuntimeError, OSError, ValueError) as error:
            # The client or the server broke down: say so, and go on with the others.
            result = fanout.failed(
                kind,
                streams,
                f"broke down: {str(error).splitlines()[0] if str(error) else type(error).__name__}",
                mode=mode,
                workers=workers,
                round=round_,
            )
        self.results.fanout.append(result)
        if not result.ok:
            progress(f"{kind} stopped at {streams} streams: {result.failure}")
            if mode == "paced":
                key = (kind, workers)
                self.stopped[key] = min(self.stopped.get(key, streams), streams)
        return result


def run(scale: Scale, database: BenchDatabase) -> Results:
    started = time.monotonic()
    maximum, available = database.connection_budget()
    fits = max(1, available - DRIVER_CONNECTIONS)
    results = Results(
        machine=describe(database.server_version(), database.description),
        scale=asdict(scale),
        max_connections=maximum,
        naive_cap=fits,
        load_before=load_average(),
        notes=notes(scale, fits),
    )
    sweep = Sweep(scale, database, results)
    counts = sorted(set(scale.streams))
    if any(kind in CONNECTION_PER_STREAM for kind in scale.servers) and fits < counts[0]:
        counts.insert(0, fits)  # a count the one-connection-per-stream peer can reach
    if "chat" in scale.servers:
        progress("creating the chat's readers (users and sessions)")
        path = Path(tempfile.mkdtemp(prefix="bench-")) / "cookies.txt"
        readers = max(counts) if not scale.opening_only else 0
        sweep.cookies = create_readers(max(readers, scale.open_streams, scale.wave_clients), path)
        close_django_connections()
    if not scale.opening_only:
        sweep_servers(scale, sweep, counts, fits)
    if "chat" in scale.servers and sweep.cookies is not None and not scale.fanout_only:
        results.opening = opening.run(
            database,
            scale.open_streams,
            scale.wave_clients,
            scale.wave_rate,
            sweep.cookies,
            servers=tuple(kind for kind in opening.SERVERS if kind in scale.servers),
            progress=progress,
        )
    results.load_after = load_average()
    results.seconds = time.monotonic() - started
    return results


def sweep_servers(scale: Scale, sweep: Sweep, counts: list[int], fits: int) -> None:
    """Every phase but the opening one: fan-out, bursts, storms, connections, publishing."""
    results, database = sweep.results, sweep.database
    for streams in counts:
        for number in range(1, scale.rounds + 1):
            for kind in scale.servers:
                sweep.measure(kind, streams, round_=number)
            if streams == counts[0] and "pgsse" in scale.servers:
                # Beside pgsse, in the same round: its publishers notifying in their own
                # transactions, as pgsse did before its notifier (the latency baseline).
                sweep.measure("pgsse-notify-tx", streams, round_=number)
    for streams in scale.two_workers:
        for kind in scale.servers:
            if kind in MULTI_WORKER:
                sweep.measure(kind, streams, workers=2)
    if scale.burst_streams:
        for kind in scale.servers:
            if kind != "chat":
                sweep.measure(kind, scale.burst_streams, mode="burst")
    if scale.storm_streams:
        for kind in scale.servers:
            if KINDS[kind].replays and kind != "chat":
                streams = scale.storm_streams
                if kind in CONNECTION_PER_STREAM:
                    streams = min(streams, fits)
                progress(f"reconnect storm: {kind}, {streams} streams, {scale.storm_behind} behind")
                try:
                    results.storms.append(storm.run(kind, database, streams, scale.storm_behind))
                except (RuntimeError, OSError, ValueError) as error:
                    results.storms.append(storm.failed(kind, streams, scale.storm_behind, error))
    if not scale.fanout_only:
        progress(f"connections: one LISTEN per stream, capped at {fits}")
        results.naive = fanout.run(
            "naive",
            database,
            min(max(counts), fits + 50),
            scale.events,
            scale.elsewhere_seconds,
            cap=fits,
        )
        progress(
            f"publish throughput: {scale.publishers} publishers, {scale.publish_seconds} s each"
        )
        results.throughput = throughput.run(
            scale.publishers, scale.publish_seconds, scale.publish_rounds
        )
        progress(f"many workers: {scale.listeners} listeners, both NOTIFY modes")
        results.listeners = listeners.run(
            database, scale.listeners, seconds=scale.publish_seconds, rounds=scale.publish_rounds
        )
    if scale.chat_posts and not scale.fanout_only:
        sizes = ", ".join(f"{members:,}" for members in scale.chat_members)
        progress(f"the chat: {scale.chat_posts} posts in rooms of {sizes} members")
        results.chat_posting = chat_posting.run(database, scale.chat_members, scale.chat_posts)


def notes(scale: Scale, fits: int) -> list[str]:
    said = [
        "every uvicorn server: --loop uvloop --http httptools; two workers are two processes"
        " sharing the port with SO_REUSEPORT; the client connects from 127.0.1.1-64",
    ]
    if any(kind.startswith("pgsse") or kind == "chat" for kind in scale.servers):
        said.append(
            f"pgsse's cap on streams per process (MAX_STREAMS) raised from 10,000 to"
            f" {PGSSE_MAX_STREAMS:,}: two workers sharing a port do not get exactly half of"
            " the streams each"
        )
    if "pg-sse" in scale.servers:
        said.append(
            "pg-sse's caps raised from 500 streams per process and 5 per key and owner to"
            f" {PG_SSE_CAPS['PG_SSE_MAX_SUBSCRIBERS']} and {PG_SSE_CAPS['PG_SSE_MAX_PER_OWNER']}"
            " (owner: the client's address, as its README advises)"
        )
    if "eventstream" in scale.servers:
        said.append(
            f"django-eventstream holds a PostgreSQL connection per stream; max_connections was"
            f" not raised, so it is also measured at {fits} streams (what fits beside the"
            " driver's connections)"
        )
    if "chat" in scale.servers:
        said.append(
            "the chat's readers: one user and one session each (made in the database), so the"
            " per-user stream cap (MAX_STREAMS_PER_USER, 32) is left as it is"
        )
    return said


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwind through every finally: servers, clients, PostgreSQL


def main(argv: list[str]) -> int:
    scale = parse_arguments(argv)
    signal.signal(signal.SIGTERM, _stop)
    raise_open_files_limit()  # the client and the servers inherit it
    progress("starting PostgreSQL and migrating the bench database")
    database = BenchDatabase()
    try:
        database.start()
        peer_tables.install(database)
        setup_django(database)
        results = run(scale, database)
    except KeyboardInterrupt:
        progress("interrupted; every process started here has been stopped")
        return 130
    finally:
        close_django_connections()
        database.drop()
    path = write(results, docs_plot=scale.docs_plot)
    print("\n".join(headlines(results)))
    print(f"Full report: {path} (and {path.with_suffix('.json').name}, {path.stem}.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
