"""The driver's handle on the :mod:`bench.swarm` client processes.

A process holds at most :data:`STREAMS_PER_PROCESS` streams: each stream is a file
descriptor, and the hard limit on them (20,000 here) cannot be raised inside this sandbox,
even as root. Larger counts are split over several processes; their answers are added up
(latencies are gathered whole, and their quantiles computed here).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.procfs import Usage, usage
from tests.processes import PYTHONPATH, REPOSITORY

STREAMS_PER_PROCESS = 15_000
#: Answers kept as the largest of the processes' (durations), not added up.
_LONGEST = ("seconds", "caught_up_seconds")


class _Client:
    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command,
            cwd=REPOSITORY,
            env={"PYTHONPATH": PYTHONPATH, "PATH": "/usr/bin:/bin"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the client process ended (exit code {self.process.poll()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        try:
            self.send("quit")
            self.process.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(10)


def _merge(answers: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key in answers[0]:
        values = [answer[key] for answer in answers]
        known = [value for value in values if value is not None]
        if not known:
            merged[key] = None
        elif isinstance(known[0], bool):
            merged[key] = all(known)
        elif isinstance(known[0], dict):
            merged[key] = {k: sum(v.get(k, 0) for v in known) for d in known for k in d}
        elif isinstance(known[0], list):
            merged[key] = [item for value in known for item in value]
        elif key in _LONGEST:
            merged[key] = max(known)
        else:
            merged[key] = sum(known)
    return merged


def _quantile(values: list[float], q: float) -> float | None:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else None


class Swarm:
    """``streams`` SSE streams to ``port`` held by client processes; ``with`` ends them."""

    def __init__(
        self,
        port: int,
        path: str,
        streams: int,
        probes: int = 200,
        connect_timeout: float = 120,
        cookies: Path | None = None,
    ) -> None:
        count = -(-streams // STREAMS_PER_PROCESS)
        shares = [streams // count + (1 if i < streams % count else 0) for i in range(count)]
        self._commands = [
            [
                sys.executable,
                "-m",
                "bench.swarm",
                str(port),
                path,
                str(share),
                str(max(1, probes * share // streams)),
                str(connect_timeout),
                *([str(cookies)] if cookies is not None else []),
            ]
            for share in shares
        ]
        self._clients: list[_Client] = []
        self.opened: dict[str, Any] = {}

    def __enter__(self) -> Swarm:
        self._clients = [_Client(command) for command in self._commands]
        try:
            self.opened = _merge([client.answer() for client in self._clients])
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for client in self._clients:
            client.stop()

    def usage(self) -> Usage:
        parts = [usage(client.process.pid) for client in self._clients]
        return Usage(
            sum(p.cpu_seconds for p in parts),
            sum(p.rss_bytes for p in parts),
            sum(p.threads for p in parts),
        )

    def ask(self, command: str) -> dict[str, Any]:
        for client in self._clients:
            client.send(command)
        return _merge([client.answer() for client in self._clients])

    def report(self) -> dict[str, Any]:
        """Latency quantiles over every probe delivery, and what the server closed."""
        answer = self.ask("report")
        ordered = sorted(answer["latencies"])
        # The time each event took to reach the last probe: fan-out completion.
        last_by_event: dict[float, float] = {}
        for published, latency in zip(answer["published"], answer["latencies"], strict=True):
            last_by_event[published] = max(latency, last_by_event.get(published, 0.0))
        completions = sorted(last_by_event.values())
        return {
            "p50_ms": _quantile(ordered, 0.50),
            "p90_ms": _quantile(ordered, 0.90),
            "p99_ms": _quantile(ordered, 0.99),
            "max_ms": ordered[-1] * 1000 if ordered else None,
            "all_probes_p50_ms": _quantile(completions, 0.50),
            "closed_by_server": answer["closed_by_server"],
        }

    def wait_for(
        self, key: str, target: int, timeout: float, command: str = "count", interval: float = 0.005
    ) -> dict[str, Any]:
        """Ask ``command`` until its ``key`` reaches ``target`` or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        answer = self.ask(command)
        while int(answer[key] or 0) < target and time.monotonic() < deadline:
            time.sleep(interval)
            answer = self.ask(command)
        return answer
