"""The report's tables: ratios against the bare loop of the same run, and every measure."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from itertools import groupby

from bench.fanout import FanoutResult
from bench.results import Results
from bench.servers import label
from bench.throughput import BASELINE, VARIANTS


def _ratio(ours: float | None, baseline: float | None) -> float | None:
    if ours is None or not baseline:
        return None
    return ours / baseline


def _number(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _times(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}x" if value < 0.1 else f"{value:.2f}x"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _median(values: Iterable[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def _spread(values: Sequence[float | None]) -> str:
    known = [value for value in values if value is not None]
    if len(known) < 2 or min(known) == max(known):
        return ""
    return f" ({min(known):.2f}-{max(known):.2f})"


def _median_ratio(values: Sequence[float | None]) -> str:
    return _times(_median(values)) + _spread(values)


def _streams(result: FanoutResult) -> str:
    workers = f" ({result.workers} workers)" if result.workers > 1 else ""
    return f"{result.streams_requested:,}{workers}"


def _groups(runs: list[FanoutResult]) -> list[tuple[tuple[int, int, str], list[FanoutResult]]]:
    """Runs grouped by (stream count, workers, server), rounds together, in a stable order."""

    def key(result: FanoutResult) -> tuple[int, int, str]:
        return (result.workers, result.streams_requested, result.server)

    ordered = sorted(runs, key=key)
    return [(k, list(group)) for k, group in groupby(ordered, key=key)]


def _measure(result: FanoutResult, measure: str) -> float | None:
    if measure == "cpu":
        return result.cpu_per_delivery_us
    if measure == "memory":
        return result.rss_per_stream_bytes
    return result.latency_ms.get(measure)


def _against(
    results: Results, runs: list[FanoutResult], measure: str, mode: str | None = None
) -> list[float | None]:
    ratios = []
    for result in runs:
        bare = results.baseline(result, mode)
        if result.ok and bare is not None:
            ratios.append(_ratio(_measure(result, measure), _measure(bare, measure)))
    return ratios


def _delivery(runs: list[FanoutResult]) -> str:
    """ "yes" when every run gave every stream every event once, in order; else what failed."""
    failed = [r for r in runs if not r.ok]
    if not failed:
        return f"yes ({sum(r.streams_complete for r in runs) // len(runs):,} streams)"
    return "**no**: " + failed[0].failure


def summary(results: Results) -> list[str]:
    """The headline: each server against the bare loop at each count, one event at a time."""
    rows = []
    for (_, _, server), runs in _groups(results.runs("paced")):
        if server == "bare":
            continue
        rows.append(
            [
                _streams(runs[0]),
                label(server),
                *(
                    _median_ratio(_against(results, runs, measure))
                    for measure in ("cpu", "memory", "p50_ms", "p99_ms")
                ),
                _delivery(runs),
            ]
        )
    header = [
        "streams",
        "server",
        "CPU per delivery",
        "memory per stream",
        "latency p50",
        "latency p99",
        "every event to every stream, once, in order",
    ]
    return _table(header, rows)


def burst_table(results: Results) -> list[str]:
    """Bursts: CPU per delivery against the bare loop's, bursting and one at a time."""
    rows = []
    for (_, _, server), runs in _groups(results.runs("burst")):
        rows.append(
            [
                _streams(runs[0]),
                label(server),
                _number(_median(r.cpu_per_delivery_us for r in runs if r.ok)),
                _median_ratio(_against(results, runs, "cpu", "paced")),
                _median_ratio(_against(results, runs, "cpu")) if server != "bare" else "1.00x",
                _number(_median(r.latency_ms.get("p99_ms") for r in runs if r.ok)),
                _delivery(runs),
            ]
        )
    header = [
        "streams",
        "server",
        "CPU µs per delivery",
        "x bare loop, one at a time",
        "x bare loop, burst",
        "p99 ms",
        "every event to every stream, once, in order",
    ]
    return _table(header, rows)


def chat_table(results: Results) -> list[str]:
    """The chat's room stream (three channels, session) against the single-channel stream."""
    rows = []
    runs = results.runs("paced")
    for result in runs:
        if result.server != "chat" or not result.ok:
            continue
        single = next(
            (
                r
                for r in runs
                if r.server == "pgsse"
                and r.ok
                and (r.streams_requested, r.workers, r.round)
                == (result.streams_requested, result.workers, result.round)
            ),
            None,
        )
        if single is None:
            continue
        rows.append(
            [
                _streams(result),
                str(result.round),
                *(
                    _times(_ratio(_measure(result, m), _measure(single, m)))
                    for m in ("cpu", "memory", "p50_ms", "p99_ms")
                ),
                _number(result.open_seconds, 2) + " / " + _number(single.open_seconds, 2),
            ]
        )
    header = [
        "streams",
        "round",
        "CPU per delivery",
        "memory per stream",
        "latency p50",
        "latency p99",
        "seconds to open (chat / single)",
    ]
    return _table(header, rows)


def stops_table(results: Results) -> list[str]:
    """Per server: the largest count it served completely, and where and how it stopped."""
    rows = []
    runs = results.runs("paced")
    for server in dict.fromkeys(r.server for r in runs):
        mine = [r for r in runs if r.server == server]
        passed = [r for r in mine if r.ok]
        failed = sorted(
            (r for r in mine if not r.ok), key=lambda r: (r.workers, r.streams_requested)
        )
        best = max(passed, key=lambda r: (r.workers, r.streams_requested), default=None)
        rows.append(
            [
                label(server),
                _streams(best) if best else "none",
                (f"{_streams(failed[0])}: {failed[0].failure}" if failed else "did not stop"),
                "; ".join(failed[0].server_errors[:2]) if failed else "",
            ]
        )
    header = ["server", "largest count served completely", "stopped at", "server's errors"]
    return _table(header, rows)


def storm_table(results: Results) -> list[str]:
    rows = []
    for storm in results.storms:
        rows.append(
            [
                label(storm.server),
                f"{storm.streams_live:,}/{storm.streams_requested:,}",
                str(storm.behind),
                _number(storm.caught_up_seconds, 2),
                _number(storm.live_seconds, 2),
                f"{storm.streams_complete:,}/{storm.reconnected:,}",
                "n/a" if storm.log_reads is None else f"{storm.log_reads:,}",
                f"{storm.table_reads:,}",
                _number(storm.server_cpu_seconds, 2),
                storm.failure or "-",
            ]
        )
    header = [
        "server",
        "streams live/asked",
        "events behind",
        "all caught up, s",
        "all live, s",
        "every missed event once, in order",
        "log reads (pgsse's count)",
        "scans of its log table",
        "server CPU s",
        "failure",
    ]
    return _table(header, rows)


def fanout_table(results: Results) -> list[str]:
    rows = [_fanout_row(result) for result in results.fanout]
    if results.naive is not None:
        rows.append(_fanout_row(results.naive))
    header = [
        "mode",
        "round",
        "server",
        "streams live/asked",
        "opened in s",
        "CPU µs/stream opened",
        "CPU µs/delivery",
        "KiB/stream",
        "threads",
        "deliveries/expected",
        "complete streams",
        "closed by server",
        "client CPU (cores)",
    ]
    return _table(header, rows)


def _fanout_row(result: FanoutResult) -> list[str]:
    workers = f", {result.workers} workers" if result.workers > 1 else ""
    return [
        result.mode,
        str(result.round),
        label(result.server) + workers,
        f"{result.streams_live}/{result.streams_requested}",
        _number(result.open_seconds, 2),
        _number(result.open_cpu_per_stream_us),
        _number(result.cpu_per_delivery_us),
        _number(result.rss_per_stream_bytes / 1024),
        str(result.threads),
        f"{result.deliveries}/{result.deliveries_expected}",
        str(result.streams_complete),
        str(result.closed_by_server),
        _number(result.client_cpu_share, 2),
    ]


def gc_table(results: Results) -> list[str]:
    """The longest full collection while the streams opened and once they were all open."""
    rows = []
    for (_, _, server), runs in _groups(results.runs("paced")):
        if server == "bare" or not any(r.gc_pauses for r in runs):
            continue
        rows.append(
            [
                _streams(runs[0]),
                label(server),
                ", ".join(_milliseconds(r.gc_full_opening_ms) for r in runs),
                ", ".join(_milliseconds(r.gc_full_open_ms) for r in runs),
            ]
        )
    header = [
        "streams",
        "server",
        "while the streams opened, ms (per round)",
        "with every stream open, ms (per round)",
    ]
    return _table(header, rows)


def _milliseconds(value: float | None) -> str:
    return "none" if value is None else _number(value)


def gc_lines(results: Results) -> list[str]:
    lines = []
    for result in results.fanout:
        if result.server == "bare" or not result.gc_pauses:
            continue
        lines.append(
            f"- {result.mode}, round {result.round}, {label(result.server)},"
            f" {_streams(result)} streams: {'; '.join(result.gc_pauses)}"
        )
    return lines


def latency_table(results: Results) -> list[str]:
    rows = []
    for result in results.fanout:
        keys = ("p50_ms", "p90_ms", "p99_ms", "max_ms", "all_probes_p50_ms")
        rows.append(
            [result.mode, str(result.round), label(result.server), _streams(result)]
            + [_number(result.latency_ms.get(key), 2) for key in keys]
            + [_number(result.publish_ms, 2)]
        )
    header = [
        "mode", "round", "server", "streams", "p50 ms", "p90 ms", "p99 ms", "max ms",
        "to every probe, median ms", "publish call, median ms",
    ]  # fmt: skip
    return _table(header, rows)


def connections_table(results: Results) -> list[str]:
    """PostgreSQL connections per server at the largest count it served, and the naive one."""
    largest: dict[str, FanoutResult] = {}
    for result in results.runs("paced"):
        if result.streams_live and (
            result.server not in largest
            or result.streams_live > largest[result.server].streams_live
        ):
            largest[result.server] = result
    servers = list(largest.values()) + ([results.naive] if results.naive else [])
    rows = [
        [
            label(result.server) + (f", {result.workers} workers" if result.workers > 1 else ""),
            str(result.streams_requested),
            str(result.streams_live),
            str(result.streams_refused + result.streams_failed),
            _connections(result.backends_peak),
            _connections(result.backends_at_rest),
            _number(result.other_channel_publishes_per_second or None, 0),
        ]
        for result in servers
    ]
    header = [
        "server",
        "streams asked",
        "served",
        "refused or failed",
        "connections (peak)",
        "connections (at rest)",
        "NOTIFY/s elsewhere",
    ]
    return _table(header, rows)


def _connections(count: int) -> str:
    # -1: PostgreSQL refused the benchmark's own question, every slot being taken.
    return str(count) if count >= 0 else "all (refused the count's own connection)"


def pgsse_baselines(results: Results) -> list[str]:
    """pgsse against its other baselines: one LISTEN per stream, plain INSERTs."""
    rows: list[list[str]] = []
    naive = results.naive
    ours = max(
        (r for r in results.runs("paced") if r.server == "pgsse" and r.ok and r.workers == 1),
        key=lambda r: r.streams_live,
        default=None,
    )
    if naive is not None and ours is not None:
        per_stream = _ratio(
            ours.backends_peak / max(ours.streams_live, 1),
            naive.backends_peak / max(naive.streams_live, 1),
        )
        rows.append(
            [
                f"PostgreSQL connections per open stream (pgsse: {ours.backends_peak} for"
                f" {ours.streams_live}; naive: {naive.backends_peak} for {naive.streams_live},"
                f" refused {naive.streams_refused + naive.streams_failed})",
                "one LISTEN connection per stream",
                _times(per_stream),
            ]
        )
        rows.append(
            [
                "NOTIFY/s on an unrelated channel while the streams are open",
                "one LISTEN connection per stream",
                _times(
                    _ratio(
                        ours.other_channel_publishes_per_second,
                        naive.other_channel_publishes_per_second,
                    )
                ),
            ]
        )
    rows += _notify_latency_rows(results)
    by_key = {(t.variant, t.publishers): t.per_second for t in results.throughput}
    for publishers in sorted({t.publishers for t in results.throughput}):
        for variant, measure, baseline, named in _PUBLISH_BASELINES:
            ratio = _ratio(by_key.get((variant, publishers)), by_key.get((baseline, publishers)))
            rows.append(
                [f"publishes/s, {publishers} publisher(s), {measure}", named, _times(ratio)]
            )
    return _table(["measure", "baseline", "pgsse / baseline"], rows) if rows else []


#: The publish rows, in the table's order: pgsse's variant and what the table calls it,
#: the baseline's variant and what the table calls it.
_PUBLISH_BASELINES = (
    ("publish", "pgsse.publish", BASELINE, "plain INSERT, no NOTIFY"),
    ("publish", "pgsse.publish", "insert_prepared", "plain INSERT, prepared"),
    (
        "publish_in_transaction",
        "pgsse.publish in atomic()",
        "insert_in_transaction",
        "plain INSERT in atomic()",
    ),
    ("publish", "pgsse.publish", "insert_notify", "INSERT + NOTIFY in each transaction"),
)


def _notify_latency_rows(results: Results) -> list[list[str]]:
    """p99 publish-to-client with the notifier against notifying in each transaction,
    median of the rounds at the count both ran."""
    runs = {
        kind: [r for r in results.runs("paced") if r.server == kind and r.ok and r.workers == 1]
        for kind in ("pgsse", "pgsse-notify-tx")
    }
    counts = {r.streams_requested for r in runs["pgsse-notify-tx"]}
    rows = []
    for count in sorted(counts):
        p99 = {
            kind: _median(r.latency_ms.get("p99_ms") for r in found if r.streams_requested == count)
            for kind, found in runs.items()
        }
        if p99["pgsse"] is None or p99["pgsse-notify-tx"] is None:
            continue
        rows.append(
            [
                f"p99 publish to client, one publisher, {count:,} streams"
                f" ({p99['pgsse']:.1f} ms against {p99['pgsse-notify-tx']:.1f} ms)",
                "NOTIFY in each publishing transaction",
                f"{p99['pgsse'] - p99['pgsse-notify-tx']:+.1f} ms",
            ]
        )
    return rows


def listeners_table(results: Results) -> list[str]:
    """Publish rate and latency by the number of listening workers, both NOTIFY modes."""
    by_key = {(r.listeners, r.mode): r for r in results.listeners}
    rows = []
    for count in sorted({r.listeners for r in results.listeners}):
        after, inside = by_key.get((count, "after_commit")), by_key.get((count, "in_transaction"))
        if after is None or inside is None:
            continue
        rows.append(
            [
                str(count),
                f"{after.per_second:,.0f}",
                f"{inside.per_second:,.0f}",
                _times(_ratio(after.per_second, inside.per_second)),
                f"{_number(after.p50_ms, 2)} / {_number(after.p99_ms, 2)}",
                f"{_number(inside.p50_ms, 2)} / {_number(inside.p99_ms, 2)}",
                f"{after.received + inside.received:,} of"
                f" {after.publishes + inside.publishes + 2 * after.publishers:,}",
            ]
        )
    header = [
        "listening workers",
        "publishes/s, after commit",
        "publishes/s, in transaction",
        "after / in",
        "p50 / p99 ms, after commit",
        "p50 / p99 ms, in transaction",
        "notifications read",
    ]
    return _table(header, rows) if rows else []


def throughput_table(results: Results) -> list[str]:
    by_key = {(t.variant, t.publishers): t for t in results.throughput}
    rows = []
    for publishers in sorted({t.publishers for t in results.throughput}):
        baseline = by_key.get((BASELINE, publishers))
        row = [str(publishers)]
        for variant in VARIANTS:
            result = by_key.get((variant, publishers))
            if result is None:
                row.append("n/a")
                continue
            ratio = _ratio(result.per_second, baseline.per_second if baseline else None)
            suffix = "" if variant == BASELINE else f" ({_times(ratio)})"
            row.append(f"{result.per_second:,.0f}{suffix}")
        shares = [
            by_key[(v, publishers)].driver_cpu_share for v in VARIANTS if (v, publishers) in by_key
        ]
        row.append(" / ".join(_number(share, 2) for share in shares))
        rows.append(row)
    header = ["publishers", *VARIANTS, "driver CPU (cores), per variant"]
    return _table(header, rows)


def chat_posting_table(results: Results) -> list[str]:
    rows = [
        [
            f"{result.members:,}",
            str(result.posts),
            str(result.refused),
            *(_number(value) for value in (result.p50_ms, result.p90_ms, result.p99_ms)),
            _number(result.max_ms),
            _number(result.events_per_message, 2),
            _number(result.room_events_per_message, 2),
        ]
        for result in results.chat_posting
    ]
    header = [
        "room members",
        "posts",
        "refused",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "log events per message",
        "of which on the room's channel",
    ]
    return _table(header, rows) if rows else []


def opening_table(results: Results) -> list[str]:
    """Opens/s and the wave's admissions, each server against pgsse's own stream."""
    pgsse = {r.mode: r for r in results.opening if r.server == "pgsse" and r.admitted}
    rows = []
    for result in results.opening:
        baseline = pgsse.get(result.mode)
        rate = "as taken" if not result.rate else f"{result.rate:,.0f}/s"
        ratio = _ratio(result.opens_per_second, baseline.opens_per_second if baseline else None)
        frames = result.first_frame_ms
        not_in = {**result.refused, **result.failed}
        if result.gave_up:
            not_in["gave up"] = result.gave_up
        why = ", ".join(f"{reason}: {count:,}" for reason, count in not_in.items())
        rows.append(
            [
                label(result.server),
                f"{result.clients:,} {rate}",
                f"{result.admitted:,}" + (f" ({why})" if why else ""),
                _number(result.opens_per_second, 0),
                _times(ratio) if result.server != "pgsse" else "",
                f"{_number(frames.get('p50'), 0)} / {_number(frames.get('p99'), 0)}",
                _number(result.server_cpu_per_open_us, 0),
                f"{result.backends_before} / {result.backends_peak} / {result.backends_open}"
                f" / {result.backends_at_rest} ({result.application_backends_at_rest})",
            ]
        )
    header = [
        "server",
        "clients",
        "admitted (not: why)",
        "opens/s",
        "against pgsse",
        "first frame p50 / p99 ms",
        "server CPU per open µs",
        "PostgreSQL backends: before / peak / streams open / at rest (not pgsse's own)",
    ]
    return _table(header, rows) if rows else []


#: The sections printed at the end of a run and written at the top of the report.
HEADLINES: tuple[tuple[str, Callable[[Results], list[str]]], ...] = (
    ("Against the bare loop, one event at a time (median of rounds, range)", summary),
    ("Where each server stopped", stops_table),
    ("Bursts: events published faster than one fan-out round", burst_table),
    ("The chat's room stream against the single-channel stream", chat_table),
    ("Opening streams: as fast as a worker takes them, and a reconnect wave", opening_table),
    ("Reconnect storm", storm_table),
    ("Longest full garbage collection (any worker)", gc_table),
    ("pgsse against its other baselines", pgsse_baselines),
    ("The chat: posting through its JSON API, by room size", chat_posting_table),
    ("Many workers on one PostgreSQL (8 publishers)", listeners_table),
)
