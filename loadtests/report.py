"""The reports of ``make chaos`` and ``make soak``: Markdown, with plots drawn by matplotlib."""

from __future__ import annotations

import itertools
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loadtests.chaos import ChaosResult
    from loadtests.sampling import Sample
    from loadtests.soak import SoakResult


def _machine(load: tuple[tuple[float, float, float], tuple[float, float, float]]) -> str:
    import os

    before, after = load
    return (
        f"{os.cpu_count()} CPUs ({platform.machine()}, Python {platform.python_version()}), "
        f"shared with other work: load average {before[0]:.1f} / {before[1]:.1f} / {before[2]:.1f} "
        f"(1, 5, 15 min) before the run, {after[0]:.1f} / {after[1]:.1f} / {after[2]:.1f} after."
    )


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def chaos_markdown(result: ChaosResult, plots: list[str]) -> str:
    config = result.config
    verdict = result.verdict
    lines = [
        "# Chaos run",
        "",
        f"`make chaos` on {_when(result.started)}: {config.streams:,} streams over "
        f"{config.rooms} rooms (plus 5 in a room of its own for the freeze), {config.workers} "
        f"uvicorn workers under a supervisor, {config.rate:g} posts per second through the "
        f"chat's HTTP API from {config.writers} users, for {config.duration:.0f} s, on "
        "loopback. Machine: " + _machine(result.load),
        "",
        f"**Result: {'passed' if result.passed else 'FAILED'}.** "
        f"{verdict.events:,} events checked against the log over {verdict.streams:,} streams: "
        f"{verdict.lost} lost, {verdict.duplicated} duplicated, {verdict.reordered} reordered, "
        f"{verdict.corrupted} with other data than the log's, {verdict.resets} `reset` events, "
        f"{len(verdict.unexplained)} connection ends without a fault to explain them. "
        f"Every stream had every event {result.converged_in:.1f} s after posting stopped. "
        f"{result.posts_ok:,} of {result.posts:,} posts stored; the supervisor restarted "
        f"{result.restarts} worker(s).",
        "",
        "## What each fault cost",
        "",
        "Reconnect: for the listener faults, the outage each worker logged (`listener "
        "reconnected after ...`); otherwise the longest time from a connection's end (from "
        "the end of the freeze, for frozen clients) until its client was live again. "
        "Catch-up: from the fault until every stream it hit (every stream, for the faults of "
        "the system) had every event committed before the fault was repaired. Max lag: the "
        "longest commit-to-client delay of an event committed during the fault, for the "
        "streams the fault did not hit (all of them, for the faults of the system). "
        "Connections ended: as the clients saw them (`retry`: ended by the server with "
        "`retry:`; `eof`/`error`: cut; `refused`: a reconnect refused while a worker or the "
        "database was down; `frozen`, `dropped`: the clients' own). Server closes: the "
        "workers' `stream closed` log lines, by reason. Posts failed: posts sent to a worker "
        "that was stopping or to a database that was down (not retried).",
        "",
        "| fault | at | detail | reconnect | catch-up | max lag | connections ended | "
        "server closes | posts failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cost in result.costs:
        fault = cost.fault
        closed = ", ".join(f"{n} {how}" for how, n in sorted(cost.closed.items())) or "none"
        server = ", ".join(f"{int(n)} {r}" for r, n in sorted(cost.server_closed.items())) or "none"
        lines.append(
            f"| {fault.kind} | {fault.start - result.started:.0f} s | {fault.detail}"
            f"{' (' + cost.note + ')' if cost.note else ''} | {_seconds(cost.reconnect)} | "
            f"{_seconds(cost.catch_up)} | {_seconds(cost.max_lag)} | {closed} | {server} | "
            f"{cost.posts_failed} |"
        )
    lines += ["", "Connection ends, by the fault that explains them:", ""]
    for key, count in sorted(verdict.explained.items()):
        lines.append(f"- {key}: {count}")
    if verdict.unexplained:
        lines += ["", "Unexplained:", ""] + [f"- {u}" for u in verdict.unexplained[:50]]
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    lines += [
        "",
        "## Delivery lag, commit to fan-out",
        "",
        "`pgsse_delivery_lag_seconds` summed over every worker process of the run: events "
        "fanned out live (a catch-up after a fault included), by the transaction's timestamp.",
        "",
        "| at most | events |",
        "|---|---|",
    ]
    lines += [f"| {bound} s | {int(count):,} |" for bound, count in result.lag_buckets]
    lines += [
        "",
        "## /metrics during the run",
        "",
        "The page of the worker that took over the stopped worker's clients, five seconds "
        "after the SIGTERM fault was repaired (pgsse's series; the process collector's "
        "left out). Its counters run from its own start.",
        "",
        "```",
        result.metrics_quote,
        "```",
        "",
        'Reproduce with `make chaos` (`CHAOS_ARGS="--duration 60 --streams 300"` for a short '
        "run); the workers' logs stay in `.loadtest/`.",
    ]
    return "\n".join(lines) + "\n"


def chaos_plots(result: ChaosResult, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = result.started
    fig, axes = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    by_port = _by_port(result.samples)
    for port, samples in by_port.items():
        xs = [s.at - start for s in samples]
        axes[0].plot(
            xs, [s.metrics.get("pgsse_streams_open", 0) for s in samples], label=f"worker {port}"
        )
        rates = _rate(samples, "pgsse_events_delivered_total")
        axes[1].plot([x - start for x, _ in rates], [r for _, r in rates], label=f"worker {port}")
    lags = _client_lags(result)
    axes[2].plot([x - start for x, _ in lags], [y for _, y in lags], ".", markersize=3)
    axes[0].set_ylabel("streams open")
    axes[1].set_ylabel("events delivered / s")
    axes[2].set_ylabel("max commit-to-client\nlag per second (s)")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("seconds since the start of the run")
    for ax in axes:
        for cost in result.costs:
            ax.axvline(cost.fault.start - start, color="red", alpha=0.4)
        ax.grid(alpha=0.3)
    for cost in result.costs:
        axes[0].annotate(
            cost.fault.kind, (cost.fault.start - start, axes[0].get_ylim()[1]),
            rotation=90, va="top", ha="right", fontsize=8, color="red",
        )  # fmt: skip
    axes[0].legend(loc="lower left")
    fig.suptitle("make chaos: streams, deliveries and lag, faults in red")
    fig.tight_layout()
    name = "chaos-timeline.png"
    fig.savefig(folder / name, dpi=90)
    plt.close(fig)
    return [name]


def _client_lags(result: ChaosResult) -> list[tuple[float, float]]:
    """Per second of receipt, the longest commit-to-client delay seen by any client."""
    from loadtests import population

    channels = {c for client in result.clients for c in client.channels}
    _, created = population.read_log(channels)
    worst: dict[int, float] = {}
    for client in result.clients:
        for channel in client.channels:
            log = client.logs[channel]
            for seq, received in zip(log.seqs, log.times, strict=True):
                at = created.get((channel, seq))
                if at is not None:
                    second = int(received)
                    worst[second] = max(worst.get(second, 0.0), received - at)
    return sorted((float(s), max(v, 1e-4)) for s, v in worst.items())


def _by_port(samples: list[Sample]) -> dict[int, list[Sample]]:
    grouped: dict[int, list[Sample]] = {}
    for sample in samples:
        grouped.setdefault(sample.port, []).append(sample)
    return grouped


def _rate(samples: list[Sample], name: str) -> list[tuple[float, float]]:
    rates = []
    for a, b in itertools.pairwise(samples):
        if a.pid == b.pid and name in a.metrics and name in b.metrics and b.at > a.at:
            rates.append((b.at, (b.metrics[name] - a.metrics[name]) / (b.at - a.at)))
    return rates


def soak_markdown(result: SoakResult, plots: list[str]) -> str:
    config = result.config
    lines = [
        "# Soak run",
        "",
        f"`make soak` on {_when(result.started)}: {config.duration / 60:.0f} minutes, "
        f"{config.workers} uvicorn workers under a supervisor, {config.streams:,} streams open "
        f"throughout over {config.rooms} rooms, {config.rate:g} posts per second, and "
        f"{config.cycles:,} connect/disconnect cycles of short-lived streams spread over the "
        f"run. Warm-up: the first {config.warmup:.0f} s. Machine: " + _machine(result.load),
        "",
        f"**Result: {'passed' if result.passed else 'FAILED'}.** "
        f"{result.posts_ok:,} of {result.posts:,} posts stored.",
        "",
        "| criterion | passed | measured |",
        "|---|---|---|",
    ]
    lines += [f"| {c.name} | {'yes' if c.passed else 'NO'} | {c.detail} |" for c in result.criteria]
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    lines += [
        "",
        "Memory is the worker's resident set (`VmRSS`), threads its OS threads, connections "
        "its PostgreSQL backends in `pg_stat_activity` (Django's, by the `application_name` "
        "each worker's `DATABASE_URL` sets, and pgsse's listener and readers). Reproduce with "
        '`make soak` (`SOAK_ARGS="--duration 300 --cycles 2000"` for a shorter run).',
    ]
    return "\n".join(lines) + "\n"


def soak_plots(result: SoakResult, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = result.started
    fig, axes = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    for port, samples in _by_port(result.samples).items():
        xs = [(s.at - start) / 60 for s in samples]
        axes[0].plot(xs, [s.rss / 2**20 for s in samples], label=f"worker {port}")
        axes[1].plot(xs, [s.threads for s in samples], label=f"worker {port}")
        axes[2].plot(xs, [s.db_django + s.db_pgsse for s in samples], label=f"worker {port} (all)")
        axes[2].plot(xs, [s.db_pgsse for s in samples], "--", label=f"worker {port} (pgsse's)")
    axes[0].set_ylabel("RSS (MiB)")
    axes[0].set_ylim(bottom=0)
    axes[1].set_ylabel("threads")
    axes[1].set_ylim(bottom=0)
    axes[2].set_ylabel("PostgreSQL connections")
    axes[2].set_ylim(bottom=0)
    axes[2].set_xlabel("minutes since the start of the run")
    for ax in axes:
        ax.axvspan(0, result.config.warmup / 60, color="grey", alpha=0.15)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle("make soak: each worker over time (warm-up shaded)")
    fig.tight_layout()
    name = "soak-workers.png"
    fig.savefig(folder / name, dpi=90)
    plt.close(fig)
    return [name]


def write_chaos(result: ChaosResult, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    plots = chaos_plots(result, folder)
    path = folder / "chaos-report.md"
    path.write_text(chaos_markdown(result, plots))
    return path


def write_soak(result: SoakResult, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    plots = soak_plots(result, folder)
    path = folder / "soak-report.md"
    path.write_text(soak_markdown(result, plots))
    return path
