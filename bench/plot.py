"""The run's plot: latency p99 and CPU per delivery against the number of streams.

One line per server (one event at a time, runs where every stream got every event; the
median of the rounds), the bare loop among them, on logarithmic axes. Counts run on two
workers (20,000 by default) continue each server's line; the title says which they are. Written with
matplotlib's Agg backend: no display needed.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from bench.results import Results
from bench.servers import label


def _series(results: Results) -> dict[str, dict[int, tuple[float, float]]]:
    """{server label: {streams: (median p99 ms, median CPU µs per delivery)}}."""
    points: dict[str, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for result in results.runs("paced"):
        p99, cpu = result.latency_ms.get("p99_ms"), result.cpu_per_delivery_us
        if not result.ok or p99 is None or cpu is None:
            continue
        points[label(result.server)][result.streams_requested].append((p99, cpu))
    return {
        name: {
            streams: (
                statistics.median(p for p, _ in values),
                statistics.median(c for _, c in values),
            )
            for streams, values in sorted(by_count.items())
        }
        for name, by_count in points.items()
    }


def plot(results: Results, path: Path) -> Path | None:
    """Draw the plot into ``path``; None when the run measured nothing to draw."""
    series = _series(results)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    import matplotlib.ticker

    figure, (latency, cpu) = pyplot.subplots(1, 2, figsize=(12, 4.8))
    for name, points in series.items():
        counts = list(points)
        style = {"linestyle": "--", "color": "black"} if name == label("bare") else {}
        latency.plot(counts, [p for p, _ in points.values()], marker="o", label=name, **style)
        cpu.plot(counts, [c for _, c in points.values()], marker="o", label=name, **style)
    for axes, title, unit in (
        (latency, "Latency p99, publish to client", "ms"),
        (cpu, "Server CPU per delivered event", "µs"),
    ):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_title(title)
        axes.set_xlabel("open streams")
        axes.set_ylabel(unit)
        axes.grid(True, which="both", alpha=0.3)
        axes.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:,.0f}"))
    cpu.legend(fontsize="small", loc="best")
    two = sorted({r.streams_requested for r in results.runs("paced") if r.workers > 1})
    on_two = f"; {', '.join(f'{n:,}' for n in two)} on two workers" if two else ""
    figure.suptitle(f"pgsse and its peers, {results.machine['date']} (one event at a time{on_two})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path
