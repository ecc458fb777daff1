"""The run's results, written as JSON, Markdown and a plot to ``bench/results/``.

``python -m bench.report RUN.json [--docs-plot]`` writes a past run's report and plot again
(after a change to the tables, say).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from bench.plot import plot
from bench.results import Results
from bench.tables import (
    HEADLINES,
    connections_table,
    fanout_table,
    gc_lines,
    latency_table,
    throughput_table,
)

RESULTS = Path(__file__).resolve().parent / "results"
#: Where ``--docs-plot`` copies the plot, for docs/performance.md.
DOCS_PLOT = Path(__file__).resolve().parent.parent / "docs" / "performance-streams.png"


def headlines(results: Results) -> list[str]:
    lines: list[str] = []
    for title, table in HEADLINES:
        rows = table(results)
        if len(rows) > 2:  # more than a header
            lines += [f"## {title}", "", *rows, ""]
    return lines


def markdown(results: Results, plot_name: str | None) -> str:
    machine = results.machine
    lines = [
        f"# pgsse benchmarks, {machine['date']}",
        "",
        f"- machine: {machine['cpu']}, {machine['memory']}, {machine['system']}",
        f"- software: Python {machine['python']}, PostgreSQL {machine['postgresql']},"
        f" {machine['software']}",
        f"- scale: {json.dumps(results.scale)}; run took {results.seconds:.0f} s",
        f"- load average before / after: {results.load_before} / {results.load_after}",
        *(f"- {note}" for note in results.notes),
        "",
        *(
            [f"![latency p99 and CPU per delivery against streams]({plot_name})", ""]
            if plot_name
            else []
        ),
        *headlines(results),
        "## Fan-out runs",
        "",
        *fanout_table(results),
        "",
        "Garbage collector pauses in the uvicorn servers over their life (start, ramp, events):",
        "",
        *gc_lines(results),
        "",
        "## Delivery latency, publish to client socket read",
        "",
        *latency_table(results),
        "",
        "## PostgreSQL connections",
        "",
        f"max_connections = {results.max_connections}; the naive server is capped at"
        f" {results.naive_cap} streams.",
        "",
        *connections_table(results),
        "",
    ]
    if results.throughput:
        lines += [
            "## Publish throughput (publishes/s; ratio to plain INSERT)",
            "",
            *throughput_table(results),
            "",
        ]
    return "\n".join(lines)


def write(results: Results, docs_plot: bool = False) -> Path:
    """Write ``results/<stamp>.{json,md,png}`` (and ``latest.*``); return the Markdown path."""
    RESULTS.mkdir(exist_ok=True)
    stamp = results.machine["date"].replace(" ", "_").replace(":", "")
    picture = plot(results, RESULTS / f"{stamp}.png")
    text = markdown(results, picture.name if picture else None)
    data = json.dumps(results.as_dict(), indent=2)
    for name in (stamp, "latest"):
        (RESULTS / f"{name}.md").write_text(
            text if name == stamp else text.replace(f"({stamp}.png)", "(latest.png)")
        )
        (RESULTS / f"{name}.json").write_text(data)
    if picture is not None:
        shutil.copyfile(picture, RESULTS / "latest.png")
        if docs_plot:
            shutil.copyfile(picture, DOCS_PLOT)
    return RESULTS / f"{stamp}.md"


if __name__ == "__main__":
    run = Results.from_dict(json.loads(Path(sys.argv[1]).read_text()))
    print(write(run, docs_plot="--docs-plot" in sys.argv))
