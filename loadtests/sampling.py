"""What the run watches as it goes: each worker's /metrics, memory, threads and connections.

Every ``interval`` seconds, for each worker process: its /metrics page (kept whole for the
report to quote), its resident memory and threads (``/proc/<pid>/status``), its open file
descriptors, and its PostgreSQL connections (``pg_stat_activity``, by ``application_name``:
Django's connections carry ``chat-worker-<port>``, pgsse's end with ``:<pid>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from loadtests.cluster import Supervisor

CONNECTIONS_SQL = """
SELECT application_name, count(*) FROM pg_stat_activity
WHERE application_name LIKE 'chat-worker-%%' OR application_name LIKE 'pgsse-%%'
GROUP BY application_name
"""


@dataclass
class Sample:
    at: float
    port: int
    pid: int
    rss: int  # bytes
    threads: int
    fds: int
    db_django: int
    db_pgsse: int
    metrics: dict[str, float] = field(default_factory=dict)
    text: str = ""


def parse_metrics(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, for every sample line."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


def _proc(pid: int) -> tuple[int, int, int]:
    status = open(f"/proc/{pid}/status").read()  # noqa: SIM115
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, threads, fds


class Sampler:
    def __init__(self, supervisor: Supervisor, database_url: str, interval: float) -> None:
        self.supervisor = supervisor
        self.database_url = database_url
        self.interval = interval
        self.samples: list[Sample] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                started = time.monotonic()
                with contextlib.suppress(Exception):
                    await self.sample(client)
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def sample(self, client: httpx.AsyncClient) -> None:
        connections = await self._connections()
        for worker in self.supervisor.workers:
            pid = worker.pid
            if pid is None:
                continue
            try:
                response = await client.get(f"{worker.url}/metrics")
                text = response.text if response.status_code == 200 else ""
                rss, threads, fds = _proc(pid)
            except (httpx.HTTPError, OSError, AttributeError):
                continue
            self.samples.append(
                Sample(
                    at=time.time(),
                    port=worker.port,
                    pid=pid,
                    rss=rss,
                    threads=threads,
                    fds=fds,
                    db_django=connections.get(f"chat-worker-{worker.port}", 0),
                    db_pgsse=sum(n for name, n in connections.items() if name.endswith(f":{pid}")),
                    metrics=parse_metrics(text),
                    text=text,
                )
            )

    async def _connections(self) -> dict[str, int]:
        try:
            async with await psycopg.AsyncConnection.connect(
                self.database_url, autocommit=True, connect_timeout=2
            ) as conn:
                rows = await (await conn.execute(CONNECTIONS_SQL)).fetchall()
        except psycopg.Error:
            return {}
        return {name: count for name, count in rows}

    def by_worker(self) -> dict[int, list[Sample]]:
        grouped: dict[int, list[Sample]] = {}
        for sample in self.samples:
            grouped.setdefault(sample.port, []).append(sample)
        return grouped

    def latest(self, port: int, before: float | None = None) -> Sample | None:
        found = [
            s
            for s in self.samples
            if s.port == port and s.text and (before is None or s.at <= before)
        ]
        return found[-1] if found else None


def metric(sample: Sample, name: str, **labels: Any) -> float:
    key = name
    if labels:
        key += "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return sample.metrics.get(key, 0.0)
