"""The system under test: a PostgreSQL of its own, and chat workers under a supervisor.

The database is an embedded server in ``.pgdata/loadtest`` with a fresh database per run,
so restarting it (a fault) disturbs nobody else. Each worker is one uvicorn process on its
own port, as in the deployment guide's systemd example; the supervisor starts them, and
restarts any that exits, the way systemd's ``Restart=always`` would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

REPOSITORY = Path(__file__).resolve().parent.parent
DEMO = REPOSITORY / "demo"
DATABASE = "pgsse_load"

T = TypeVar("T")


def run_in_new_folder(kind: str, main: Callable[[Path], Coroutine[Any, Any, T]]) -> T:
    """Run ``main(folder)`` on uvloop (asyncio where uvloop is missing), ``folder`` being a
    new folder of ``.loadtest/`` for this run's logs (``<kind>-<date>-<time>``)."""
    folder = REPOSITORY / ".loadtest" / time.strftime(f"{kind}-%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import uvloop

        return uvloop.run(main(folder))
    except ImportError:
        return asyncio.run(main(folder))


class Database:
    """The embedded PostgreSQL of the load tests, with a fresh database each run."""

    def __init__(self) -> None:
        sys.path.insert(0, str(DEMO))
        from chatsite import embedded_db

        self._embedded_db = embedded_db
        self.server: Any = embedded_db.start("loadtest", keep_running=False)
        admin_url = str(self.server.get_uri())
        with psycopg.connect(admin_url, autocommit=True) as conn:
            name = sql.Identifier(DATABASE)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
        parts = urlsplit(admin_url)
        self.url = urlunsplit(parts._replace(path=f"/{DATABASE}"))
        self.admin_url = admin_url

    def url_for(self, application_name: str) -> str:
        """The database's URL with an ``application_name``, to find a worker's connections."""
        parts = urlsplit(self.url)
        query = parts.query + "&" + urlencode({"application_name": application_name})
        return urlunsplit(parts._replace(query=query))

    def restart(self) -> tuple[float, float]:
        """Stop (fast: connections are cut) and start again; return both moments."""
        stopped = time.time()
        self._embedded_db.stop(self.server, mode="fast")
        self.server.ensure_postgres_running()
        return stopped, time.time()

    def migrate(self) -> None:
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=DEMO,
            env=worker_environment(self.url),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{done.stdout}\n{done.stderr}")


def worker_environment(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "loadtests.settings",
        "DJANGO_DEBUG": "",
        "PYTHONPATH": os.pathsep.join(str(REPOSITORY / p) for p in (".", "demo", "src")),
    }


@dataclass
class Incarnation:
    """One run of a worker process."""

    pid: int
    started: float
    ended: float | None = None
    returncode: int | None = None


@dataclass
class Worker:
    port: int
    log_path: Path
    incarnations: list[Incarnation] = field(default_factory=list)
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.returncode is None else None


class Supervisor:
    """Starts the workers, restarts any that exits, stops them all at the end."""

    RESTART_DELAY = 0.5

    def __init__(self, database: Database, ports: list[int], log_dir: Path) -> None:
        self.database = database
        self.workers = [Worker(port, log_dir / f"worker-{port}.log") for port in ports]
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for worker in self.workers:
            await self._spawn(worker)
            self._tasks.append(asyncio.create_task(self._watch(worker)))
        await asyncio.gather(*(self.wait_ready(worker) for worker in self.workers))

    async def _spawn(self, worker: Worker) -> None:
        command = [
            sys.executable, "-m", "uvicorn", "chatsite.asgi:application",
            "--host", "127.0.0.1", "--port", str(worker.port), "--lifespan", "on",
            "--timeout-graceful-shutdown", "5", "--log-level", "warning",
            "--backlog", "4096", "--loop", "uvloop", "--http", "httptools",
        ]  # fmt: skip
        env = worker_environment(self.database.url_for(f"chat-worker-{worker.port}"))
        with worker.log_path.open("ab") as log:
            worker.process = await asyncio.create_subprocess_exec(
                *command, cwd=DEMO, env=env, stdout=log, stderr=log
            )
        worker.incarnations.append(Incarnation(worker.process.pid, time.time()))

    async def _watch(self, worker: Worker) -> None:
        while True:
            assert worker.process is not None
            returncode = await worker.process.wait()
            worker.incarnations[-1].ended = time.time()
            worker.incarnations[-1].returncode = returncode
            if self._stopping:
                return
            await asyncio.sleep(self.RESTART_DELAY)
            await self._spawn(worker)

    async def wait_ready(self, worker: Worker, timeout: float = 60) -> float:
        """Wait until the worker answers /readyz with 200; return when it did."""
        import httpx

        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=worker.url, timeout=2) as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return time.time()
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"worker {worker.port} not ready after {timeout}s")

    def terminate(self, worker: Worker) -> float:
        """SIGTERM the worker (the supervisor restarts it once it exits)."""
        assert worker.process is not None
        worker.process.send_signal(signal.SIGTERM)
        return time.time()

    async def stop(self) -> None:
        self._stopping = True
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            if worker.process is not None:
                try:
                    await asyncio.wait_for(worker.process.wait(), 15)
                except TimeoutError:
                    worker.process.kill()
                    await worker.process.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def restarts(self) -> int:
        return sum(len(worker.incarnations) - 1 for worker in self.workers)


def free_ports(count: int) -> list[int]:
    import socket

    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def setup_django(database_url: str) -> None:
    """Configure Django in this process on the load test's database (for setup and the log)."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "loadtests.settings"
    for path in (REPOSITORY / "demo", REPOSITORY / "src"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    import django

    django.setup()
