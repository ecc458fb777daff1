"""The servers under test, each run in its own process on 127.0.0.1.

- ``pgsse``: ``uvicorn tests.asgi:application`` (uvloop, httptools), the package as users
  deploy it, serving ``/events/<channel>/`` from tests/urls.py (through
  :mod:`bench.gc_timing`, which also reports the garbage collector's pauses);
- ``pgsse-asgi``: the same hub and stream core behind a plain ASGI endpoint, without
  Django's request handling (:mod:`bench.asgi_endpoint`; what a fast path would save);
- ``bare``: the bare asyncio loop of :mod:`bench.bare_loop`, the floor any server pays;
- ``naive``: one LISTEN connection per stream, :mod:`bench.naive_listen`.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from bench.database import REPOSITORY, BenchDatabase
from bench.procfs import Usage, usage

#: The stream path every server answers (the bare loop and the naive server ignore it).
CHANNEL = "room:bench"
STREAM_PATH = f"/events/{CHANNEL}/"


#: The uvicorn servers: pgsse as deployed, and pgsse's core behind a bare ASGI endpoint.
APPLICATIONS = {"pgsse": "tests.asgi:application", "pgsse-asgi": "bench.asgi_endpoint:application"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command(kind: str, port: int, database: BenchDatabase, cap: int = 0) -> list[str]:
    if kind in APPLICATIONS:
        # `python -m bench.gc_timing` is `python -m uvicorn` plus a tally of the garbage
        # collector's pauses, printed when the server stops.
        return [
            sys.executable, "-m", "bench.gc_timing", APPLICATIONS[kind],
            "--host", "127.0.0.1", "--port", str(port),
            "--loop", "uvloop", "--http", "httptools",
            "--log-level", "warning", "--no-access-log",
            "--backlog", "4096", "--timeout-graceful-shutdown", "3",
        ]  # fmt: skip
    if kind == "bare":
        return [sys.executable, "-m", "bench.bare_loop", str(port), database.url, CHANNEL]
    if kind == "naive":
        return [
            sys.executable, "-m", "bench.naive_listen", str(port), database.url, CHANNEL, str(cap)
        ]  # fmt: skip
    raise ValueError(f"unknown server kind {kind!r}")


class ServerProcess:
    """A server subprocess: started, waited for, measured, and always stopped."""

    def __init__(
        self, kind: str, database: BenchDatabase, cap: int = 0, **environment: str
    ) -> None:
        self.kind = kind
        self.port = free_port()
        self._command = command(kind, self.port, database, cap)
        self._env = database.environment(**environment)
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix=f"bench-{kind}-", suffix=".log", delete=False
        )
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        self.process = subprocess.Popen(
            self._command, cwd=REPOSITORY, env=self._env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited early:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} server did not start in 30 s:\n{self.output()}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def usage(self) -> Usage:
        return usage(self.pid)

    def warm_up(self) -> None:
        """Serve one stream to its first ``id:`` and close it: lazy imports happen now."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(
                f"GET {STREAM_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            received = b""
            while b"id:" not in received:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def output(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")
