"""The report's tables: ratios against the baselines, and every measure of the run."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from bench.fanout import FanoutResult
from bench.throughput import BASELINE, VARIANTS

if TYPE_CHECKING:
    from bench.report import Results


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
    if len(known) < 2:
        return ""
    return f" ({min(known):.2f}-{max(known):.2f})"


def summary(results: Results) -> list[str]:
    """The headline: every ratio of pgsse to its baseline (median over rounds, with range)."""
    rounds = results.fanout_rounds
    bare = "bare asyncio loop"
    rows = []
    for streams in sorted({r["pgsse"].streams_requested for r in rounds}):
        at = [r for r in rounds if r["pgsse"].streams_requested == streams]
        for kind, how in (("pgsse", ""), ("pgsse-asgi", " (core behind a plain ASGI endpoint)")):
            if not all(kind in r for r in at):
                continue
            for label, measure in (
                ("fan-out: CPU per delivered event", "cpu"),
                ("fan-out: memory per open stream", "memory"),
                ("latency p50", "p50_ms"),
                ("latency p99", "p99_ms"),
            ):
                ratios = [_fanout_ratio(r, measure, kind) for r in at]
                rows.append(
                    [
                        f"{label}, {streams} streams{how}",
                        bare,
                        _times(_median(ratios)) + _spread(ratios),
                    ]
                )
    naive = results.naive
    if naive is not None and rounds:
        ours = rounds[-1]["pgsse"]
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
    by_key = {(t.variant, t.publishers): t.per_second for t in results.throughput}
    for publishers in sorted({t.publishers for t in results.throughput}):
        rows.append(
            [
                f"publishes/s, {publishers} publisher(s), pgsse.publish",
                "plain INSERT, no NOTIFY",
                _times(
                    _ratio(by_key.get(("publish", publishers)), by_key.get((BASELINE, publishers)))
                ),
            ]
        )
    return _table(["measure", "baseline", "pgsse / baseline"], rows)


def _fanout_ratio(
    round_: dict[str, FanoutResult], measure: str, kind: str = "pgsse"
) -> float | None:
    ours, baseline = round_[kind], round_["bare"]
    if measure == "cpu":
        return _ratio(ours.cpu_per_delivery_us, baseline.cpu_per_delivery_us)
    if measure == "memory":
        return _ratio(ours.rss_per_stream_bytes, baseline.rss_per_stream_bytes)
    return _ratio(ours.latency_ms[measure], baseline.latency_ms[measure])


def fanout_table(results: Results) -> list[str]:
    rows = []
    for number, round_ in enumerate(results.fanout_rounds, 1):
        for result in round_.values():
            rows.append(_fanout_row(str(number), result))
    if results.naive is not None:
        rows.append(_fanout_row("-", results.naive))
    header = [
        "round",
        "server",
        "streams live/asked",
        "opened in s",
        "CPU µs/delivery",
        "KiB/stream",
        "threads",
        "deliveries/expected",
        "closed by server",
        "client CPU (cores)",
    ]
    return _table(header, rows)


def _fanout_row(number: str, result: FanoutResult) -> list[str]:
    return [
        number,
        _label(result.server),
        f"{result.streams_live}/{result.streams_requested}",
        _number(result.open_seconds, 2),
        _number(result.cpu_per_delivery_us),
        _number(result.rss_per_stream_bytes / 1024),
        str(result.threads),
        f"{result.deliveries}/{result.deliveries_expected}",
        str(result.closed_by_server),
        _number(result.client_cpu_share, 2),
    ]


def gc_lines(results: Results) -> list[str]:
    lines = []
    for number, round_ in enumerate(results.fanout_rounds, 1):
        for ours in round_.values():
            if ours.server == "bare":
                continue
            pauses = "; ".join(ours.gc_pauses) or "none reported (collector disabled?)"
            lines.append(
                f"- round {number}, {_label(ours.server)}, {ours.streams_live} streams: {pauses}"
            )
    return lines


def latency_table(results: Results) -> list[str]:
    rows = []
    for number, round_ in enumerate(results.fanout_rounds, 1):
        for result in round_.values():
            keys = ("p50_ms", "p90_ms", "p99_ms", "max_ms", "all_probes_p50_ms")
            quantiles = [result.latency_ms.get(key) for key in keys]
            rows.append(
                [
                    str(number),
                    _label(result.server),
                    f"{result.streams_live} ({result.latency_probes})",
                ]
                + [_number(value, 2) for value in quantiles]
                + [_number(result.publish_ms, 2)]
            )
    header = [
        "round", "server", "streams (probes)", "p50 ms", "p90 ms", "p99 ms", "max ms",
        "to every probe, median ms",
        "publish() call, median ms",
    ]  # fmt: skip
    return _table(header, rows)


def connections_table(results: Results) -> list[str]:
    rows = []
    servers = [r["pgsse"] for r in results.fanout_rounds[-1:]]
    if results.naive is not None:
        servers.append(results.naive)
    for result in servers:
        rows.append(
            [
                _label(result.server),
                str(result.streams_requested),
                str(result.streams_live),
                str(result.streams_refused + result.streams_failed),
                str(result.backends_peak),
                str(result.backends_at_rest),
                _number(result.other_channel_publishes_per_second, 0),
            ]
        )
    header = [
        "server",
        "streams asked",
        "served",
        "refused",
        "connections (peak)",
        "connections (at rest)",
        "NOTIFY/s elsewhere",
    ]
    return _table(header, rows)


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


def _label(kind: str) -> str:
    return {
        "pgsse": "pgsse (uvicorn)",
        "pgsse-asgi": "pgsse core, plain ASGI",
        "bare": "bare asyncio loop",
        "naive": "LISTEN per stream",
    }.get(kind, kind)
