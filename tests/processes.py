"""Servers in their own processes (uvicorn, granian, daphne...) on a test or bench database.

One implementation for the tests (fixtures, restarts, several workers) and the benchmark
(bench/servers.py builds its commands and measures the processes started here).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
#: What servers import from: the repository (tests/, bench/), demo/ (the chat) and src/.
PYTHONPATH = os.pathsep.join(str(REPOSITORY / part) for part in (".", "demo", "src"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A server in a subprocess on the database of ``database_url``.

    ``command`` is formatted with ``{port}``. The process gets ``DATABASE_URL`` and the test
    settings (unless ``env`` names others), so it serves the same data as the caller. Pass
    the ``port`` of a stopped server to restart it where its clients will reconnect, or of
    a running one whose socket the new process shares (``SO_REUSEPORT``).
    """

    def __init__(
        self, command: list[str], database_url: str, port: int | None = None, **env: str
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [part.format(port=self.port) for part in command]
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": PYTHONPATH,
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False)  # noqa: SIM115

    def start(self, timeout: float = 30) -> ServerProcess:
        """Start the process and return once its port accepts connections."""
        self.process = subprocess.Popen(
            self.command,
            cwd=REPOSITORY / "demo",
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.close()
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.output()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def terminate(self, timeout: float = 30) -> float:
        """Send SIGTERM and wait for the exit; return the seconds it took."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout)
        self.log.close()  # the process has its own; output() reads the file by name
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.log.close()

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, and SIGKILL if the process is still there after ``timeout`` seconds."""
        if self.process is None or self.process.poll() is not None:
            self.log.close()
            return
        try:
            self.terminate(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text(errors="replace")


def uvicorn_command(*extra: str, lifespan: str = "off") -> list[str]:
    """uvicorn serving the chat (chatsite.asgi) on ``{port}``, warnings only."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "chatsite.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--lifespan",
        lifespan,
        "--log-level",
        "warning",
        *extra,
    ]


def project_worker(
    database_url: str,
    application: str = "tests.asgi:application",
    settings: str = "tests.settings",
    **pgsse: object,
) -> ServerProcess:
    """A uvicorn worker of pgsse's test project (tests/urls.py), with ``pgsse`` settings
    added to the test settings' ``PGSSE`` (or those of the ``settings`` module)."""
    command = [
        *(sys.executable, "-m", "uvicorn", application, "--host", "127.0.0.1"),
        *("--port", "{port}", "--log-level", "warning", "--backlog", "2048"),
        *("--timeout-graceful-shutdown", "2"),
    ]
    return ServerProcess(
        command,
        database_url,
        DJANGO_SETTINGS_MODULE=settings,
        TEST_ROOT_URLCONF="tests.urls",
        TEST_PGSSE=json.dumps(pgsse),
    )
