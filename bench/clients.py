"""The driver's handle on a :mod:`bench.swarm` client process."""

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


class Swarm:
    """``streams`` SSE streams to ``port`` held by a client process; ``with`` ends it."""

    def __init__(
        self,
        port: int,
        path: str,
        streams: int,
        probes: int = 200,
        connect_timeout: float = 120,
        cookies: Path | None = None,
    ) -> None:
        self._command = [
            sys.executable, "-m", "bench.swarm",
            str(port), path, str(streams), str(probes), str(connect_timeout),
        ]  # fmt: skip
        if cookies is not None:
            self._command.append(str(cookies))
        self.process: subprocess.Popen[str] | None = None
        self.opened: dict[str, Any] = {}

    def __enter__(self) -> Swarm:
        self.process = subprocess.Popen(
            self._command,
            cwd=REPOSITORY,
            env={"PYTHONPATH": PYTHONPATH, "PATH": "/usr/bin:/bin"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.opened = self._answer()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.ask("quit", answer=False)
            self.process.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(10)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def usage(self) -> Usage:
        return usage(self.pid)

    def ask(self, command: str, answer: bool = True) -> dict[str, Any]:
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._answer() if answer else {}

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

    def _answer(self) -> dict[str, Any]:
        assert self.process is not None
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the client process ended (exit code {self.process.poll()})")
        result: dict[str, Any] = json.loads(line)
        return result
