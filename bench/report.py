"""The run's results, written as JSON and Markdown to ``bench/results/``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fanout import FanoutResult
from bench.tables import (
    connections_table,
    fanout_table,
    gc_lines,
    latency_table,
    summary,
    throughput_table,
)
from bench.throughput import ThroughputResult

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Results:
    machine: dict[str, str]
    scale: dict[str, Any]
    #: One dict per round: the fan-out servers (pgsse, pgsse-asgi, bare), back to back.
    fanout_rounds: list[dict[str, FanoutResult]] = field(default_factory=list)
    naive: FanoutResult | None = None
    naive_cap: int = 0
    max_connections: int = 0
    throughput: list[ThroughputResult] = field(default_factory=list)
    load_before: str = ""
    load_after: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "scale": self.scale,
            "load_average_before": self.load_before,
            "load_average_after": self.load_after,
            "seconds": self.seconds,
            "fanout_rounds": [
                {kind: result.as_dict() for kind, result in round_.items()}
                for round_ in self.fanout_rounds
            ],
            "naive": self.naive.as_dict() if self.naive else None,
            "naive_cap": self.naive_cap,
            "max_connections": self.max_connections,
            "throughput": [result.as_dict() for result in self.throughput],
        }


def markdown(results: Results) -> str:
    machine = results.machine
    lines = [
        f"# pgsse benchmarks, {machine['date']}",
        "",
        f"- machine: {machine['cpu']}, {machine['memory']}, {machine['system']}",
        f"- software: Python {machine['python']}, PostgreSQL {machine['postgresql']},"
        f" {machine['software']}",
        f"- scale: {json.dumps(results.scale)}; run took {results.seconds:.0f} s",
        f"- load average before / after: {results.load_before} / {results.load_after}",
        "",
        "## Ratios (pgsse / baseline, same run)",
        "",
        *summary(results),
        "",
        "## Fan-out: one event at a time to every stream",
        "",
        *fanout_table(results),
        "",
        "Garbage collector pauses in the pgsse servers over their life (start, ramp, events):",
        "",
        *gc_lines(results),
        "",
        "## Delivery latency, publish to client socket read",
        "",
        *latency_table(results),
        "",
    ]
    if results.naive is not None:
        lines += [
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


def write(results: Results) -> Path:
    """Write ``results/<stamp>.json`` and ``.md`` (and ``latest.*``); return the Markdown path."""
    RESULTS.mkdir(exist_ok=True)
    stamp = results.machine["date"].replace(" ", "_").replace(":", "")
    text = markdown(results)
    data = json.dumps(results.as_dict(), indent=2)
    for name in (stamp, "latest"):
        (RESULTS / f"{name}.md").write_text(text)
        (RESULTS / f"{name}.json").write_text(data)
    return RESULTS / f"{stamp}.md"
