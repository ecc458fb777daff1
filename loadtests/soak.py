"""``make soak``: steady load with connect/disconnect churn, watching for anything that grows.

Two workers under the supervisor; ``streams`` clients stay connected all along while posts
arrive steadily; meanwhile ``cycles`` short-lived clients connect, go live, read a little
and leave. Each worker's memory, threads and PostgreSQL connections are sampled
throughout. It passes only if, after warm-up, memory stays within 10% (median of the last
third against the first), threads and connections do not grow (the last third's median
stays at or below the first third's highest), no worker restarted, the churn clients all
went live, and the steady streams pass the invariant checker.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from loadtests import invariants, population, sampling
from loadtests.cluster import (
    Database,
    Supervisor,
    free_ports,
    run_in_new_folder,
    setup_django,
)
from loadtests.invariants import Verdict
from loadtests.publishing import Publisher
from loadtests.streams import StreamClient

#: Memory may move this much (a fraction) between the first and last third after warm-up.
MEMORY_TOLERANCE = 0.10


@dataclass
class SoakConfig:
    duration: float = 1800.0
    streams: int = 500
    cycles: int = 10_000
    rooms: int = 10
    rate: float = 10.0
    workers: int = 2
    report: Path | None = None

    @property
    def warmup(self) -> float:
        return max(10.0, 0.2 * self.duration)


@dataclass
class Criterion:
    name: str
    passed: bool
    detail: str


@dataclass
class SoakResult:
    config: SoakConfig
    started: float
    finished: float
    load: tuple[tuple[float, float, float], tuple[float, float, float]]
    cycles: int
    cycles_failed: int
    posts: int
    posts_ok: int
    restarts: int
    verdict: Verdict
    criteria: list[Criterion]
    samples: list[sampling.Sample] = field(repr=False)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.criteria)


class Soak:
    def __init__(self, config: SoakConfig, run_dir: Path) -> None:
        self.config = config
        self.run_dir = run_dir
        self.cycles = 0
        self.cycles_failed = 0

    async def run(self) -> SoakResult:
        config = self.config
        load_before = os.getloadavg()
        started = time.time()
        database = Database()
        database.migrate()
        setup_django(database.url)
        people = await asyncio.to_thread(population.populate, config.rooms, 200, 20)
        self.people = people
        supervisor = Supervisor(database, free_ports(config.workers), self.run_dir)
        await supervisor.start()
        ports = [w.port for w in supervisor.workers]
        interval = min(10.0, max(1.0, config.duration / 200))
        sampler = sampling.Sampler(supervisor, database.admin_url, interval)
        sampler.start()
        publisher = Publisher(ports, people.rooms, people.writers, config.rate)
        try:
            steady = [self._client(n, ports) for n in range(config.streams)]
            for client in steady:
                client.start()
            for client in steady:
                await asyncio.wait_for(client.live.wait(), 120)
            posting = asyncio.create_task(publisher.run())
            await self._churn(ports, started + config.duration)
            publisher.stop()
            await posting
            channels = {c for room in people.rooms for c in people.channels[room]}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                heads = await asyncio.to_thread(population.heads, channels)
                if all(client.at_least(heads) for client in steady):
                    break
                await asyncio.sleep(0.5)
            for client in steady:
                await client.stop()
        finally:
            await sampler.stop()
            await supervisor.stop()
        rows, _ = await asyncio.to_thread(population.read_log, channels)
        heads = await asyncio.to_thread(population.heads, channels)
        verdict = invariants.check(steady, invariants.log_crcs(rows), heads, [])
        result = SoakResult(
            config=config,
            started=started,
            finished=time.time(),
            load=(load_before, os.getloadavg()),
            cycles=self.cycles,
            cycles_failed=self.cycles_failed,
            posts=len(publisher.posts),
            posts_ok=sum(1 for p in publisher.posts if p.status == 201),
            restarts=supervisor.restarts,
            verdict=verdict,
            criteria=[],
            samples=sampler.samples,
        )
        result.criteria = judge(result)
        return result

    def _client(self, index: int, ports: list[int]) -> StreamClient:
        room = self.people.rooms[index % len(self.people.rooms)]
        token = self.people.readers[index % len(self.people.readers)]
        return StreamClient(
            index, ports, f"/rooms/{room}/events/", token, self.people.channels[room]
        )

    async def _churn(self, ports: list[int], until: float) -> None:
        """Start ``cycles`` short-lived clients, evenly over the run."""
        config = self.config
        interval = (until - time.time()) / config.cycles
        running: set[asyncio.Task[None]] = set()
        next_at = time.monotonic()
        for n in range(config.cycles):
            task = asyncio.create_task(self._cycle(config.streams + n, ports))
            running.add(task)
            task.add_done_callback(running.discard)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await asyncio.gather(*running, return_exceptions=True)

    async def _cycle(self, index: int, ports: list[int]) -> None:
        client = self._client(index, ports)
        client.start()
        try:
            await asyncio.wait_for(client.live.wait(), 20)
            await asyncio.sleep(0.5 + (index % 10) / 10)  # reads a little, then leaves
            self.cycles += 1
        except TimeoutError:
            self.cycles_failed += 1
        finally:
            await client.stop()


def judge(result: SoakResult) -> list[Criterion]:
    config = result.config
    criteria = [
        Criterion(
            "churn",
            result.cycles >= config.cycles and result.cycles_failed == 0,
            f"{result.cycles:,} connect/disconnect cycles went live, "
            f"{result.cycles_failed} did not",
        ),
        Criterion("no restart", result.restarts == 0, f"{result.restarts} worker restarts"),
        Criterion(
            "invariants",
            result.verdict.passed,
            f"{result.verdict.streams} steady streams, {result.verdict.events:,} events: "
            f"{result.verdict.lost} lost, {result.verdict.duplicated} duplicated, "
            f"{result.verdict.reordered} reordered",
        ),
    ]
    warm_until = result.started + config.warmup
    by_worker: dict[int, list[sampling.Sample]] = {}
    for sample in result.samples:
        if sample.at >= warm_until:
            by_worker.setdefault(sample.port, []).append(sample)
    for port, samples in sorted(by_worker.items()):
        third = max(1, len(samples) // 3)
        first, last = samples[:third], samples[-third:]
        rss_first = statistics.median(s.rss for s in first)
        rss_last = statistics.median(s.rss for s in last)
        change = rss_last / rss_first - 1
        criteria.append(
            Criterion(
                f"worker {port} memory",
                abs(change) <= MEMORY_TOLERANCE,
                f"RSS {rss_first / 2**20:.1f} MiB after warm-up, {rss_last / 2**20:.1f} MiB at "
                f"the end ({change:+.1%})",
            )
        )
        measures: list[tuple[str, Callable[[sampling.Sample], int]]] = [
            ("threads", lambda s: s.threads),
            ("PostgreSQL connections", lambda s: s.db_django + s.db_pgsse),
            ("pgsse's connections", lambda s: s.db_pgsse),
        ]
        for name, value in measures:
            early = max(value(s) for s in first)
            late = statistics.median(value(s) for s in last)
            criteria.append(
                Criterion(
                    f"worker {port} {name}",
                    late <= early,
                    f"at most {early} after warm-up, median {late:g} at the end",
                )
            )
    if not by_worker:
        criteria.append(Criterion("samples", False, "no sample after warm-up"))
    return criteria


def run(config: SoakConfig) -> SoakResult:
    return run_in_new_folder("soak", lambda folder: Soak(config, folder).run())
