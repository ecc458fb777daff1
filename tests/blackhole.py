"""A TCP proxy to the test PostgreSQL that can go silent: a network that drops packets.

``swallow()`` makes every connection the proxy carries stop forwarding in both directions,
without closing anything: no reset, no FIN, the peer's kernel acknowledges every byte.
Neither end learns of it except by waiting: this is what a query sent into a partitioned
network looks like. Connections made afterwards pass as usual.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from django.conf import settings

from pgsse.connection import connection_kwargs


class Blackhole:
    def __init__(self) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._carried: list[_Carried] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="blackhole", daemon=True)

    def start(self) -> Blackhole:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start")
        return self

    def conninfo(self) -> dict[str, Any]:
        """psycopg's parameters for the test database, through the proxy."""
        kwargs = connection_kwargs(settings.DATABASES["default"])
        return {**kwargs, "host": "127.0.0.1", "port": str(self.port)}

    def swallow(self) -> int:
        """Stop forwarding on every connection carried now; return how many."""
        carried = list(self._carried)
        for connection in carried:
            connection.silent = True
        return len(carried)

    @property
    def passing(self) -> int:
        """Connections carried that forward (made after the last swallow())."""
        return sum(not connection.silent for connection in self._carried)

    def stop(self) -> None:
        """Close every connection (both ends learn of it) and stop."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._carry, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        for connection in self._carried:
            connection.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await _open_upstream()
        carried = _Carried(writer, upstream_writer)
        self._carried.append(carried)
        try:
            await asyncio.gather(
                carried.pump(reader, upstream_writer), carried.pump(upstream_reader, writer)
            )
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            carried.close()


class _Carried:
    def __init__(self, *writers: asyncio.StreamWriter) -> None:
        self.silent = False
        self._writers = writers

    async def pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            if not self.silent:
                sink.write(data)
                await sink.drain()

    def close(self) -> None:
        for writer in self._writers:
            writer.close()


async def _open_upstream() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    kwargs = connection_kwargs(settings.DATABASES["default"])
    host, port = str(kwargs.get("host") or "localhost"), int(kwargs.get("port") or 5432)
    if host.startswith("/"):
        return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
    return await asyncio.open_connection(host, port)
