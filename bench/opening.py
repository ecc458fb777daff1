"""Opening streams: how fast a worker lets clients in, pgsse's own stream against the chat's.

For pgsse's ``StreamView`` (the test project's ``/events/<channel>/``, no session) and the
chat's room stream (``/rooms/<slug>/events/``, each client its own logged-in user with its
own session), each on a fresh one-worker server, in the same run:

- **open rate**: N clients open as fast as the server takes them (at most 64 waiting at
  once, see :mod:`bench.open_wave`); opens/s until every one has its first frame, and the
  server's CPU per open;
- **reconnect wave**: M clients start at a fixed rate (1,000/s), as after a deploy, each
  giving up after ``PATIENCE`` seconds without its first frame: how many got in, their time
  to first frame (p50, p99), refusals by status.

Each also reports the server's PostgreSQL backends (``pg_stat_activity``, client backends
of the bench database): before the clients came, the peak while they opened (sampled every
0.1 s), with every stream open, and at rest once the streams have gone and the server has
been idle for ``REST_SECONDS`` (what an idle worker keeps: pgsse's listener and readers,
and whatever Django's connection pool still holds, counted apart).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.database import BenchDatabase
from bench.fanout import BackendSampler
from bench.publisher import close_django_connections
from bench.servers import KINDS, PGSSE_MAX_STREAMS, Server
from tests.processes import PYTHONPATH, REPOSITORY

#: Seconds a wave's client waits for its first frame before it gives up.
PATIENCE = 10.0
#: Seconds of idleness after the streams have gone before backends are counted "at rest":
#: long enough for the chat's connection pool to let every idle connection go (its
#: ``max_idle`` times its ``max_size``: it closes one idle connection per ``max_idle``).
REST_SECONDS = 20.0
#: The servers compared, in the report's order.
SERVERS = ("pgsse", "chat")
#: pgsse's intervals as deployed: the test settings the bench's servers start from check
#: the log every second (``SWEEP_INTERVAL``), which a server following a channel per
#: user (the chat) pays for every open stream, and pgsse's single channel does not.
DEPLOYED_INTERVALS = ("SWEEP_INTERVAL", "HEALTH_INTERVAL", "HEALTH_TIMEOUT", "RECONNECT_MAX_DELAY")


def _deployed_settings() -> dict[str, str]:
    from pgsse.conf import PgsseSettings

    options: dict[str, object] = {"MAX_STREAMS": PGSSE_MAX_STREAMS}
    options.update({name: getattr(PgsseSettings, name) for name in DEPLOYED_INTERVALS})
    return {"TEST_PGSSE": json.dumps(options)}


@dataclass
class OpeningResult:
    server: str
    #: "open rate" (as fast as the server takes them) or "wave" (a fixed rate).
    mode: str
    clients: int
    #: Clients started per second (0: each as soon as one of 64 is settled).
    rate: float
    admitted: int
    refused: dict[str, int]
    failed: dict[str, int]
    gave_up: int
    seconds: float
    opens_per_second: float
    first_frame_ms: dict[str, float | None]
    server_cpu_per_open_us: float
    backends_before: int
    backends_peak: int
    backends_open: int
    backends_at_rest: int
    #: Of those at rest, the application's (Django's): not pgsse's listener or readers.
    application_backends_at_rest: int = 0
    failure: str = ""
    server_errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def failed(kind: str, mode: str, clients: int, rate: float, why: str) -> OpeningResult:
    return OpeningResult(
        server=kind,
        mode=mode,
        clients=clients,
        rate=rate,
        admitted=0,
        refused={},
        failed={},
        gave_up=0,
        seconds=0.0,
        opens_per_second=0.0,
        first_frame_ms={},
        server_cpu_per_open_us=0.0,
        backends_before=0,
        backends_peak=0,
        backends_open=0,
        backends_at_rest=0,
        failure=why,
    )


def _client(port: int, path: str, clients: int, rate: float, cookies: Path | None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.open_wave",
        "--port",
        str(port),
        "--path",
        path,
        "--clients",
        str(clients),
        "--rate",
        str(rate),
        "--patience",
        str(PATIENCE),
        "--hold",
        *(["--cookies", str(cookies)] if cookies is not None else []),
    ]


def run_one(
    kind: str,
    database: BenchDatabase,
    clients: int,
    rate: float,
    cookies: Path | None = None,
    rest_seconds: float = REST_SECONDS,
) -> OpeningResult:
    """``clients`` open ``kind``'s stream on a fresh one-worker server (``rate`` 0: in turn)."""
    mode = "wave" if rate else "open rate"
    close_django_connections()  # the driver's own connection must not be counted
    server = Server(kind, database, 1, 0, **_deployed_settings())
    try:
        server.start()
    except RuntimeError as error:
        return failed(kind, mode, clients, rate, f"did not start: {str(error).splitlines()[0]}")
    with server:
        server.warm_up(cookies.read_text().split()[0] if cookies else "")
        time.sleep(0.5)
        before = database.backends()
        cpu = server.usage().cpu_seconds
        with BackendSampler(database, interval=0.1) as sampler:
            client = subprocess.Popen(
                _client(server.port, KINDS[kind].path, clients, rate, cookies),
                cwd=REPOSITORY,
                env={"PYTHONPATH": PYTHONPATH, "PATH": "/usr/bin:/bin"},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert client.stdout is not None
                assert client.stdin is not None
                line = client.stdout.readline()
                cpu = server.usage().cpu_seconds - cpu
                time.sleep(1.0)
                streams_open = database.backends()
                peak = sampler.peak
                client.stdin.write("quit\n")
                client.stdin.flush()
                client.wait(30)
            finally:
                if client.poll() is None:
                    client.kill()
                    client.wait(10)
        if not line:
            return failed(kind, mode, clients, rate, f"the client ended ({client.returncode})")
        answer = json.loads(line)
        time.sleep(rest_seconds)
        at_rest = database.backends()
        application_at_rest = database.backends(but_pgsses=True)
    admitted = int(answer["admitted"])
    return OpeningResult(
        server=kind,
        mode=mode,
        clients=clients,
        rate=rate,
        admitted=admitted,
        refused=answer["refused"],
        failed=answer["failed"],
        gave_up=int(answer["gave_up"]),
        seconds=float(answer["seconds"]),
        opens_per_second=float(answer["opens_per_second"]),
        first_frame_ms=answer["first_frame_ms"],
        server_cpu_per_open_us=cpu / max(admitted, 1) * 1e6,
        backends_before=before,
        backends_peak=max(peak, streams_open),
        backends_open=streams_open,
        backends_at_rest=at_rest,
        application_backends_at_rest=application_at_rest,
        failure="" if admitted == clients else f"{clients - admitted} of {clients} not admitted",
        server_errors=_errors(server.output()),
    )


def _errors(output: str, limit: int = 5) -> list[str]:
    lines = [line for line in output.splitlines() if "Error" in line or "Traceback" in line]
    return lines[:limit]


def run(
    database: BenchDatabase,
    streams: int,
    wave_clients: int,
    wave_rate: float,
    cookies: Path,
    servers: tuple[str, ...] = SERVERS,
    progress: Any = print,
) -> list[OpeningResult]:
    """The open rate and the wave, for each server (pgsse's first: the baseline)."""
    results = []
    for kind in servers:
        chat_cookies = cookies if kind == "chat" else None
        if streams:
            progress(f"opening: {kind}, {streams:,} clients as fast as it takes them")
            results.append(run_one(kind, database, streams, 0.0, chat_cookies))
        if wave_clients:
            progress(f"opening: {kind}, {wave_clients:,} clients at {wave_rate:,.0f}/s")
            results.append(run_one(kind, database, wave_clients, wave_rate, chat_cookies))
    return results
