"""A real uvicorn serving the chat's ASGI application, in a thread of the test process.

The socket is bound to 127.0.0.1 port 0 before the server starts (no free-port race) and
the server runs its own event loop, so it has its own pgsse hub, exactly like a worker
process: the wrapped application's lifespan opens and closes it. Tests reach the hub
through :meth:`LiveServer.call` (run on the server's loop).
Servers in their own processes are :class:`tests.processes.ServerProcess`, re-exported here.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvicorn

from pgsse.hub import Hub, current_hub
from tests.processes import REPOSITORY, ServerProcess, free_port, uvicorn_command

__all__ = ["REPOSITORY", "LiveServer", "ServerProcess", "free_port", "uvicorn_command"]

T = TypeVar("T")


class LiveServer:
    def __init__(self, app: Any, **config: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        options = {
            # The wrapped application's lifespan opens and closes its hub, as deployed
            # (Django's handler alone refuses lifespan: its streams open a hub of the loop).
            "lifespan": "auto",
            "log_level": "warning",
            "timeout_graceful_shutdown": 2,
            "backlog": 2048,
            **config,
        }
        self._server = uvicorn.Server(uvicorn.Config(app, **options))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name=f"uvicorn-{self.port}", daemon=True)

    def _run(self) -> None:
        # As asyncio.run() does: once served, the tasks left are cancelled (a hub owned by
        # the loop closes then), and the loop is closed.
        with asyncio.Runner() as runner:
            self._loop = runner.get_loop()
            runner.run(self._server.serve(sockets=[self._sock]))

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
