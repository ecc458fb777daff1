"""``make chaos``: 2,000 streams over 20 rooms, steady posting, and a schedule of faults.

Faults, spread over the run: kill a worker's listener backend, restart PostgreSQL, SIGTERM
a worker (its supervisor restarts it), freeze clients (they stop reading while their room
receives more than every buffer on the way holds), drop clients' connections mid-event,
and kill the other worker's listener. Then posting stops, every stream catches up, and the
invariant checker compares every stream with the log. What each fault cost (reconnect
time, catch-up time, streams closed, posts refused) goes into the report.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from loadtests import invariants, population, sampling
from loadtests.cluster import (
    Database,
    Supervisor,
    Worker,
    free_ports,
    run_in_new_folder,
    setup_django,
)
from loadtests.invariants import Fault, Verdict
from loadtests.publishing import Publisher
from loadtests.streams import StreamClient

FREEZE_ROOM = "freeze-room"
#: Clients stop reading for at most three times this (until the workers close them).
FREEZE_SECONDS = 20.0
#: Events of 4,000 characters published to the frozen clients' room (with publish_many(),
#: not through the API, to be quick): about 8 MB, more than the kernel's loopback buffers
#: (up to 4 MB per socket) and the stream's 64 KiB together.
FREEZE_BURST = 2000


@dataclass
class ChaosConfig:
    duration: float = 300.0
    streams: int = 2000
    rooms: int = 20
    writers: int = 40
    rate: float = 20.0  # posts per second, in all
    workers: int = 2
    report: Path | None = None


@dataclass
class FaultCost:
    fault: Fault
    reconnect: float | None = None  # seconds
    catch_up: float | None = None  # seconds from injection to every stream caught up
    max_lag: float | None = None  # commit to client, events committed during the fault
    closed: Counter[str] = field(default_factory=Counter)  # connection ends, by how
    server_closed: dict[str, float] = field(default_factory=dict)  # /metrics, by reason
    posts_failed: int = 0
    note: str = ""


@dataclass
class ChaosResult:
    config: ChaosConfig
    verdict: Verdict
    costs: list[FaultCost]
    started: float
    finished: float
    load: tuple[tuple[float, float, float], tuple[float, float, float]]
    posts: int
    posts_ok: int
    restarts: int
    samples: list[sampling.Sample]
    metrics_quote: str
    lag_buckets: list[tuple[str, float]]
    converged_in: float
    clients: list[StreamClient] = field(repr=False, default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict.passed and self.converged_in >= 0


class Chaos:
    def __init__(self, config: ChaosConfig, run_dir: Path) -> None:
        self.config = config
        self.run_dir = run_dir
        self.faults: list[Fault] = []
        self.costs: list[FaultCost] = []

    async def run(self) -> ChaosResult:
        config = self.config
        load_before = os.getloadavg()
        started = time.time()
        self.database = Database()
        self.database.migrate()
        setup_django(self.database.url)
        self.people = await asyncio.to_thread(
            population.populate, config.rooms, 200, config.writers, (FREEZE_ROOM,)
        )
        self.supervisor = Supervisor(self.database, free_ports(config.workers), self.run_dir)
        await self.supervisor.start()
        ports = [w.port for w in self.supervisor.workers]
        self.sampler = sampling.Sampler(self.supervisor, self.database.admin_url, 2.0)
        self.sampler.start()
        try:
            self.clients = await self._open_streams(ports)
            self.publisher = Publisher(ports, self.people.rooms, self.people.writers, config.rate)
            posting = asyncio.create_task(self.publisher.run())
            await self._faults(started)
            self.publisher.stop()
            await posting
            converged_in = await self._converge()
            for client in self.clients:
                await client.stop()
        finally:
            await self.sampler.stop()
            await self.supervisor.stop()
        channels = {c for channels in self.people.channels.values() for c in channels}
        rows, created = await asyncio.to_thread(population.read_log, channels)
        heads = await asyncio.to_thread(population.heads, channels)
        verdict = invariants.check(self.clients, invariants.log_crcs(rows), heads, self.faults)
        self._measure(created)
        posts = self.publisher.posts
        return ChaosResult(
            config=config,
            verdict=verdict,
            costs=self.costs,
            started=started,
            finished=time.time(),
            load=(load_before, os.getloadavg()),
            posts=len(posts),
            posts_ok=sum(1 for p in posts if p.status == 201),
            restarts=self.supervisor.restarts,
            samples=self.sampler.samples,
            metrics_quote=self._quote(),
            lag_buckets=self._lag_buckets(),
            converged_in=converged_in,
            clients=self.clients,
        )

    # -- the load --------------------------------------------------------------------

    async def _open_streams(self, ports: list[int]) -> list[StreamClient]:
        people = self.people
        clients = []
        for index in range(self.config.streams):
            room = people.rooms[index % len(people.rooms)]
            clients.append(self._client(index, ports, room))
        # The frozen clients' room: three to freeze, two that keep reading.
        for offset in range(5):
            clients.append(self._client(len(clients), ports, FREEZE_ROOM))
            del offset
        for start in range(0, len(clients), 100):
            for client in clients[start : start + 100]:
                client.start()
            await asyncio.sleep(0.3)
        deadline = time.monotonic() + 120
        for client in clients:
            await asyncio.wait_for(client.live.wait(), max(1.0, deadline - time.monotonic()))
        return clients

    def _client(self, index: int, ports: list[int], room: str) -> StreamClient:
        token = self.people.readers[index % len(self.people.readers)]
        return StreamClient(
            index, ports, f"/rooms/{room}/events/", token, self.people.channels[room]
        )

    async def _converge(self, timeout: float = 120) -> float:
        """Wait until every stream has every event of the log; seconds it took (-1: never)."""
        began = time.monotonic()
        channels = {c for channels in self.people.channels.values() for c in channels}
        while time.monotonic() - began < timeout:
            heads = await asyncio.to_thread(population.heads, channels)
            if all(client.at_least(heads) for client in self.clients):
                return time.monotonic() - began
            await asyncio.sleep(0.5)
        return -1.0

    # -- the faults ------------------------------------------------------------------

    async def _faults(self, started: float) -> None:
        workers = self.supervisor.workers
        schedule: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("kill listener", lambda: self._kill_listener(workers[0])),
            ("restart PostgreSQL", self._restart_postgres),
            ("SIGTERM worker", lambda: self._sigterm(workers[-1])),
            ("freeze clients", self._freeze),
            ("drop mid-event", self._drop),
            ("kill listener", lambda: self._kill_listener(workers[-1])),
        ]
        began = time.monotonic()
        span = self.config.duration * 0.8
        for index, (_, inject) in enumerate(schedule):
            at = span * (index + 0.5) / len(schedule)
            await asyncio.sleep(max(0.0, at - (time.monotonic() - began)))
            await inject()
        await asyncio.sleep(max(0.0, self.config.duration - (time.monotonic() - began)))

    async def _kill_listener(self, worker: Worker) -> None:
        pid = worker.pid
        async with await psycopg.AsyncConnection.connect(
            self.database.admin_url, autocommit=True
        ) as admin:
            row = await (
                await admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s",
                    (f"pgsse-listener %:{pid}",),
                )
            ).fetchone()
            assert row is not None, "the worker's listener is not connected"
            start = time.time()
            await admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))
        end = await self._listener_back(worker, start)
        self._fault("kill listener", start, end, port=worker.port, detail=f"backend {row[0]}")

    async def _listener_back(self, worker: Worker, since: float, timeout: float = 60) -> float:
        import httpx

        async with httpx.AsyncClient(base_url=worker.url, timeout=2) as client:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    text = (await client.get("/metrics")).text
                    values = sampling.parse_metrics(text)
                    if values.get("pgsse_listener_connected") == 1 and time.time() - since > 0.05:
                        return time.time()
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        return time.time()

    async def _restart_postgres(self) -> None:
        stopped, restarted = await asyncio.to_thread(self.database.restart)
        for worker in self.supervisor.workers:
            await self._listener_back(worker, restarted)
        self._fault(
            "restart PostgreSQL", stopped, time.time(), detail=f"down {restarted - stopped:.2f} s"
        )

    async def _sigterm(self, worker: Worker) -> None:
        start = self.supervisor.terminate(worker)
        while len(worker.incarnations) < 2 or worker.pid is None:
            await asyncio.sleep(0.05)
        ready = await self.supervisor.wait_ready(worker)
        exited = worker.incarnations[-2].ended or ready
        self._fault(
            "SIGTERM worker", start, ready, port=worker.port,
            detail=f"exited after {exited - start:.2f} s, ready {ready - start:.2f} s after",
        )  # fmt: skip

    async def _freeze(self) -> None:
        """Three clients stop reading while their room gets more than every buffer holds;
        they read again once the workers have closed their streams (or after a minute)."""
        frozen = [c for c in self.clients if c.path == f"/rooms/{FREEZE_ROOM}/events/"][:3]
        closed_before = self._slow_closes()
        start = time.time()
        for client in frozen:
            client.freeze(FREEZE_SECONDS * 3)
        await asyncio.sleep(1)  # their new connections are open, and not read
        burst = time.time()
        stored = await asyncio.to_thread(population.burst, FREEZE_ROOM, FREEZE_BURST, 4000)
        posted = time.time() - burst
        deadline = time.monotonic() + FREEZE_SECONDS * 3
        while time.monotonic() < deadline and self._slow_closes() < closed_before + len(frozen):
            await asyncio.sleep(0.2)
        thawed = time.time()
        for client in frozen:
            client.thaw()
        for client in frozen:
            await _live_again(client, thawed)
        self._fault(
            "freeze clients", start, time.time(),
            clients=frozenset(c.index for c in frozen),
            detail=f"{len(frozen)} clients stop reading for {thawed - start:.0f} s; "
            f"{stored} events of 4,000 characters reach their room in {posted:.1f} s",
        )  # fmt: skip

    def _slow_closes(self) -> float:
        """Streams the workers closed as too slow, so far (their latest /metrics)."""
        total = 0.0
        for worker in self.supervisor.workers:
            sample = self.sampler.latest(worker.port)
            if sample is not None:
                total += sum(
                    sample.metrics.get(f'pgsse_streams_closed_total{{reason="{reason}"}}', 0.0)
                    for reason in ("slow_consumer", "write_timeout")
                )
        return total

    async def _drop(self) -> None:
        victims = random.sample(self.clients[: self.config.streams], 20)
        start = time.time()
        before = {c.index: len(c.connections) for c in victims}
        for client in victims:
            client.drop_mid_event()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            len(c.connections) > before[c.index] and c.connections[-1].live_at for c in victims
        ):
            await asyncio.sleep(0.05)
        self._fault(
            "drop mid-event", start, time.time(), clients=frozenset(c.index for c in victims),
            detail="20 clients reset their connection half-way through an event",
        )  # fmt: skip

    def _fault(self, kind: str, start: float, end: float, **more: Any) -> None:
        self.faults.append(Fault(kind, start, end, **more))

    # -- what each fault cost ----------------------------------------------------------

    def _measure(self, created: dict[tuple[str, int], float]) -> None:
        for fault in self.faults:
            cost = FaultCost(fault)
            ends = [
                (client, connection)
                for client in self.clients
                for connection in client.connections
                if connection.closed
                and connection.ended not in ("", "stopped")
                and invariants.explain(client, connection, self.faults, invariants.SLACK) is fault
            ]
            cost.closed = Counter(connection.ended for _, connection in ends)
            if fault.kind in ("kill listener", "restart PostgreSQL"):
                outages = self._listener_outages(fault)
                cost.reconnect = max(outages) if outages else None
                cost.note = "listener outages " + ", ".join(f"{o:.2f} s" for o in outages)
            else:
                cost.reconnect = _reconnect(ends, fault)
            cost.catch_up, cost.max_lag = self._catch_up(fault, created)
            cost.server_closed = self._server_closed(fault)
            cost.posts_failed = self.publisher.errors_between(fault.start, fault.end)
            self.costs.append(cost)

    def _listener_outages(self, fault: Fault) -> list[float]:
        """Listener outages logged by the workers during the fault (one line per reconnect)."""
        found = []
        for worker in self.supervisor.workers:
            if fault.port is not None and worker.port != fault.port:
                continue
            for record in _log_records(worker, "listener reconnected"):
                if fault.start - 1 <= _timestamp(record["time"]) <= fault.end + invariants.SLACK:
                    found.append(float(record["outage"]))
        return found

    def _catch_up(
        self, fault: Fault, created: dict[tuple[str, int], float]
    ) -> tuple[float | None, float | None]:
        """Seconds from the fault until every stream it hit had every event committed
        until its repair; and the longest commit-to-client delay of an event committed
        meanwhile, for the streams it did not hit (all of them for a fault of the system)."""
        latest: dict[str, int] = {}
        for (channel, seq), at in created.items():
            if at <= fault.end and seq > latest.get(channel, 0):
                latest[channel] = seq
        done: float | None = None
        worst: float | None = None
        for client in self.clients:
            hit = not fault.clients or client.index in fault.clients
            first = dict(zip(client.channels, client.first_position or (), strict=False))
            for channel in client.channels:
                log = client.logs[channel]
                target = latest.get(channel, 0)
                for seq, received in zip(log.seqs, log.times, strict=True):
                    committed = created.get((channel, seq))
                    if (
                        committed is not None
                        and fault.start <= committed <= fault.end
                        and (not hit or not fault.clients)
                    ):
                        worst = max(worst or 0.0, received - committed)
                    if hit and seq == target and first.get(channel, 0) < target:
                        done = max(done or fault.start, received)
        return (None if done is None else done - fault.start), worst

    def _server_closed(self, fault: Fault) -> dict[str, float]:
        """Streams the workers closed during the fault, by reason (their ``stream closed``
        log lines: a worker that stopped cannot be scraped afterwards)."""
        totals: Counter[str] = Counter()
        for worker in self.supervisor.workers:
            if fault.port is not None and worker.port != fault.port:
                continue
            for record in _log_records(worker, "stream closed"):
                if fault.start - 1 <= _timestamp(record["time"]) <= fault.end + invariants.SLACK:
                    totals[record["reason"]] += 1
        return dict(totals)

    def _quote(self) -> str:
        """A worker's /metrics page during the run (after the SIGTERM), pgsse's lines."""
        sigterm = next((f for f in self.faults if f.kind == "SIGTERM worker"), None)
        moment = sigterm.end + 5 if sigterm else time.time()
        worker = self.supervisor.workers[0]
        sample = next(
            (
                s
                for s in self.sampler.samples
                if s.port == worker.port and s.at >= moment and s.text
            ),
            None,
        )
        if sample is None:
            sample = self.sampler.latest(worker.port)
        if sample is None:
            return ""
        lines = [
            line
            for line in sample.text.splitlines()
            if line.startswith("pgsse_") and "_created" not in line
        ]
        return "\n".join(lines)

    def _lag_buckets(self) -> list[tuple[str, float]]:
        """The delivery-lag histogram of every worker incarnation, summed (last samples)."""
        totals: dict[str, float] = {}
        for worker in self.supervisor.workers:
            for incarnation in worker.incarnations:
                samples = [s for s in self.sampler.samples if s.pid == incarnation.pid and s.text]
                if samples:
                    for key, value in samples[-1].metrics.items():
                        if key.startswith("pgsse_delivery_lag_seconds_bucket{"):
                            bound = key.split('"')[1]
                            totals[bound] = totals.get(bound, 0.0) + value
        return sorted(totals.items(), key=lambda kv: float(kv[0].replace("+Inf", "inf")))


async def _live_again(client: StreamClient, since: float, timeout: float = 60) -> None:
    """Wait until ``client`` has a connection opened after ``since`` that went live."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.opened >= since and c.live_at for c in client.connections):
            return
        await asyncio.sleep(0.05)


def _reconnect(ends: list[tuple[StreamClient, Any]], fault: Fault) -> float | None:
    """The longest time from a connection's end (from the end of a freeze, for frozen
    clients) until its client was live again."""
    longest = None
    for client, connection in ends:
        after = [c for c in client.connections if c.opened >= (connection.closed or 0)]
        live = next((c.live_at for c in after if c.live_at), None)
        if live is not None and connection.closed is not None:
            since = fault.end - 1 if connection.ended == "frozen" else connection.closed
            longest = max(longest or 0.0, live - max(since, connection.closed))
    return longest


def _log_records(worker: Worker, message: str) -> list[dict[str, Any]]:
    """The worker's JSON log lines whose message starts with ``message``."""
    found = []
    for line in worker.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"message": "{message}' in line:
            found.append(json.loads(line))
    return found


def _timestamp(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def run(config: ChaosConfig) -> ChaosResult:
    return run_in_new_folder("chaos", lambda folder: Chaos(config, folder).run())
