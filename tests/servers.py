"""A real uvicorn serving the chat's ASGI application, in a thread of the test process.

The socket is bound to 127.0.0.1 port 0 before the server starts (no free-port race) and
the server runs its own event loop, so it has its own pgsse hub, exactly like a worker
process. Tests reach the hub through :meth:`LiveServer.call` (run on the server's loop).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from pgsse.hub import Hub, current_hub

T = TypeVar("T")


class LiveServer:
    def __init__(self, app: Any, **config: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        options = {
            "lifespan": "off",
            "log_level": "warning",
            "timeout_graceful_shutdown": 2,
            "backlog": 2048,
            **config,
        }
        self._server = uvicorn.Server(uvicorn.Config(app, **options))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name=f"uvicorn-{self.port}", daemon=True)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._server.serve(sockets=[self._sock]))
        self._loop.run_until_complete(self._close_hub())
        self._loop.close()

    async def _close_hub(self) -> None:
        from pgsse.hub import close_hub

        await close_hub()

    def start(self) -> LiveServer:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the test server failed to start")
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()

    def call(self, function: Callable[[], Coroutine[Any, Any, T]], timeout: float = 10) -> T:
        """Run ``function()`` on the server's event loop and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(function(), self._loop).result(timeout)

    def shrink_send_buffer(self, client_port: int, size: int) -> bool:
        """Give the server's end of one client connection a small kernel send buffer.

        Loopback buffers grow to megabytes; with a small one, a client that stops reading
        blocks the server's writes after kilobytes, as a slow network would.
        """

        async def shrink() -> bool:
            for protocol in self._server.server_state.connections:
                transport = getattr(protocol, "transport", None)
                if transport is not None and transport.get_extra_info("peername")[1] == client_port:
                    sock = transport.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
                    return True
            return False

        return self.call(shrink)

    def hub(self) -> Hub | None:
        """The server's hub, once a stream has started it."""

        async def find() -> Hub | None:
            return current_hub()

        return self.call(find)

    def on_hub(self, function: Callable[[Hub], T]) -> T:
        """``function(hub)`` run on the server's loop, for a hub some stream started."""

        async def run() -> T:
            hub = current_hub()
            assert hub is not None, "no stream has started the server's hub yet"
            return function(hub)

        return self.call(run)


REPOSITORY = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A server in a subprocess (uvicorn, granian, daphne...) on the test database.

    ``command`` is formatted with ``{port}``. The process gets ``DATABASE_URL`` of the test
    database and the test settings, so it serves the same data as the test process. Pass
    the ``port`` of a stopped server to restart it where its clients will reconnect.
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
            "PYTHONPATH": os.pathsep.join(str(REPOSITORY / part) for part in (".", "demo", "src")),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False)  # noqa: SIM115

    def start(self, timeout: float = 30) -> ServerProcess:
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
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.output()}")

    def terminate(self, timeout: float = 30) -> float:
        """Send SIGTERM and wait for the exit; return the seconds it took."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")


def uvicorn_command(*extra: str) -> list[str]:
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
        "off",
        "--log-level",
        "warning",
        *extra,
    ]
