"""Stopping a worker with open streams: every stream ends cleanly with a retry hint, fast.

uvicorn and granian wait for open connections before they finish a graceful shutdown; an
SSE stream never ends by itself. pgsse's SIGTERM handler ends them, so the worker exits
long before its graceful-shutdown timeout, and every client is told to come back
(``retry:``).
"""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from tests.clients import LightReader
from tests.postgres import Postgres
from tests.servers import ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)

GRACE = 20
UVICORN = [
    *(sys.executable, "-m", "uvicorn", "tests.asgi:application"),
    *("--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning"),
    *("--backlog", "2048", "--timeout-graceful-shutdown", str(GRACE)),
]
GRANIAN = [
    *(sys.executable, "-m", "granian", "--interface", "asgi", "tests.asgi:application"),
    *("--host", "127.0.0.1", "--port", "{port}", "--workers-kill-timeout", str(GRACE)),
]
DAPHNE = [
    *(sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", "{port}"),
    "tests.asgi:application",
]
GUNICORN = [
    *(sys.executable, "-m", "gunicorn", "tests.asgi:application"),
    *("--worker-class", "uvicorn_worker.UvicornWorker", "--bind", "127.0.0.1:{port}"),
    *("--backlog", "2048", "--graceful-timeout", str(GRACE), "--log-level", "warning"),
]


@pytest.mark.parametrize(
    ("command", "streams", "exit_code"),
    [
        # After its graceful shutdown uvicorn re-raises the signal it caught.
        pytest.param(UVICORN, 1000, -signal.SIGTERM, id="uvicorn"),
        pytest.param(GRANIAN, 200, 0, id="granian"),
        pytest.param(GUNICORN, 200, 0, id="gunicorn"),
        # daphne stops its loop at once on SIGTERM: the hub hands the signal on only once
        # the streams have written their retry:.
        pytest.param(DAPHNE, 200, 0, id="daphne"),
    ],
)
async def test_sigterm_with_open_streams_ends_them_all_and_exits_quickly(
    pg: Postgres, transactional_db: None, command: list[str], streams: int, exit_code: int
) -> None:
    server = ServerProcess(command, pg.url, TEST_ROOT_URLCONF="tests.urls").start()
    readers = [LightReader(server.url, "/events/room:bye/") for _ in range(streams)]
    try:
        for reader in readers:
            reader.start()
        await asyncio.wait_for(asyncio.gather(*(r.live.wait() for r in readers)), 120)
        elapsed = await asyncio.to_thread(server.terminate, GRACE + 10)
        await asyncio.wait_for(
            asyncio.gather(*(r.wait_for(lambda r: r.clean_ends >= 1) for r in readers)), 30
        )
    finally:
        for reader in readers:
            await reader.stop()
        server.kill()
    assert server.process is not None
    assert server.process.returncode == exit_code, server.output()
    # Without pgsse's handler the server would wait out its grace period, then cut streams.
    assert elapsed < GRACE / 2, f"exit took {elapsed:.1f}s"
    # Every stream ended cleanly: a final chunk right after its retry: hint. (A server
    # that still accepts connections while it stops, as gunicorn does, lets a client
    # reconnect once more: that stream, refused by the stopping hub, ends cleanly too.)
    ends = [(r.clean_ends, r.server_closes) for r in readers]
    assert all(clean >= 1 and clean == closes for clean, closes in ends), ends
    output = server.output()
    assert "Traceback" not in output, output[max(0, output.find("Traceback") - 2000) :]
