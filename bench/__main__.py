"""``python -m bench [--quick]``: run every benchmark, write bench/results/, print the tables.

Everything listens on 127.0.0.1, every phase is bounded, and every process started here
(servers, clients, the embedded PostgreSQL) is stopped on the way out, even on failure.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from dataclasses import asdict, dataclass
from types import FrameType

from bench import fanout, throughput
from bench.database import BenchDatabase
from bench.machine import describe, load_average
from bench.publisher import setup_django
from bench.report import Results, write
from bench.tables import fanout_table, summary

#: Connections the driver itself may need while the naive server holds its cap.
DRIVER_CONNECTIONS = 8


@dataclass(frozen=True)
class Scale:
    #: Open streams in the fan-out benchmark, one series of rounds per count.
    streams: tuple[int, ...]
    events: int
    rounds: int
    publish_seconds: float
    elsewhere_seconds: float
    publish_rounds: int
    publishers: tuple[int, ...] = (1, 8, 32)
    #: Only the fan-out rounds (no naive server, no publish throughput).
    fanout_only: bool = False
    #: Run the pgsse server with Python's cyclic garbage collector disabled (a diagnosis).
    pgsse_gc_off: bool = False


QUICK = Scale(
    streams=(500,),
    events=20,
    rounds=1,
    publish_seconds=2.0,
    elsewhere_seconds=2.0,
    publish_rounds=2,
)
FULL = Scale(
    streams=(1000, 4000),
    events=40,
    rounds=2,
    publish_seconds=6.0,
    elsewhere_seconds=3.0,
    publish_rounds=3,
)


def parse_arguments(argv: list[str]) -> Scale:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small scale, under ~2 minutes")
    parser.add_argument(
        "--streams", type=int, nargs="+", help="open streams in the fan-out benchmark"
    )
    parser.add_argument("--events", type=int, help="events published to those streams")
    parser.add_argument("--rounds", type=int, help="pgsse/bare-loop rounds, back to back")
    parser.add_argument(
        "--fanout-only", action="store_true", help="skip the connection and publish benchmarks"
    )
    parser.add_argument(
        "--pgsse-gc-off",
        action="store_true",
        help="diagnosis: disable the garbage collector in the pgsse server",
    )
    arguments = parser.parse_args(argv)
    scale = QUICK if arguments.quick else FULL
    overrides = {
        name: getattr(arguments, name)
        for name in ("events", "rounds")
        if getattr(arguments, name) is not None
    }
    overrides["fanout_only"] = arguments.fanout_only
    overrides["pgsse_gc_off"] = arguments.pgsse_gc_off
    if arguments.streams:
        overrides["streams"] = tuple(arguments.streams)
    return Scale(**{**asdict(scale), **overrides})


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(scale: Scale, database: BenchDatabase) -> Results:
    started = time.monotonic()
    maximum, available = database.connection_budget()
    results = Results(
        machine=describe(database.server_version(), database.description),
        scale=asdict(scale),
        max_connections=maximum,
        naive_cap=max(1, available - DRIVER_CONNECTIONS),
        load_before=load_average(),
    )
    for streams in scale.streams:
        for number in range(1, scale.rounds + 1):
            round_ = {}
            for kind in ("pgsse", "pgsse-asgi", "bare"):
                progress(f"fan-out round {number}: {kind}, {streams} streams")
                gc_off = scale.pgsse_gc_off and kind != "bare"
                environment = {"PGSSE_BENCH_GC": "off"} if gc_off else {}
                round_[kind] = fanout.run(
                    kind,
                    database,
                    streams,
                    scale.events,
                    scale.elsewhere_seconds,
                    environment=environment,
                )
            results.fanout_rounds.append(round_)
    if scale.fanout_only:
        results.load_after = load_average()
        results.seconds = time.monotonic() - started
        return results
    progress(f"connections: one LISTEN per stream, capped at {results.naive_cap}")
    results.naive = fanout.run(
        "naive",
        database,
        min(max(scale.streams), results.naive_cap + 50),
        scale.events,
        scale.elsewhere_seconds,
        cap=results.naive_cap,
    )
    progress(f"publish throughput: {scale.publishers} publishers, {scale.publish_seconds} s each")
    results.throughput = throughput.run(
        scale.publishers, scale.publish_seconds, scale.publish_rounds
    )
    results.load_after = load_average()
    results.seconds = time.monotonic() - started
    return results


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwind through every finally: servers, clients, PostgreSQL


def main(argv: list[str]) -> int:
    scale = parse_arguments(argv)
    signal.signal(signal.SIGTERM, _stop)
    progress("starting PostgreSQL and migrating the bench database")
    database = BenchDatabase()
    try:
        database.start()
        setup_django(database)
        results = run(scale, database)
    except KeyboardInterrupt:
        progress("interrupted; every process started here has been stopped")
        return 130
    finally:
        database.drop()
    path = write(results)
    print("\n".join(summary(results)))
    print()
    print("\n".join(fanout_table(results)))
    print(f"\nFull report: {path} (and {path.with_suffix('.json').name})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
