"""The naive baseline: every stream opens its own PostgreSQL connection and LISTENs on it.

``python -m bench.naive_listen PORT DATABASE_URL CHANNEL CAP``. This is the design of the
usual blog post. It holds at most ``CAP`` streams (kept below ``max_connections`` so the
benchmark never starves PostgreSQL of the connections the driver itself needs); beyond that,
or when PostgreSQL refuses a connection, it answers 503, so the benchmark sees where it breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

import psycopg
import uvloop
from psycopg import sql

from bench.servers import READY
from bench.sse_wire import GREETING, REFUSED, STREAM_HEAD, frame_from_payload
from pgsse.channels import pg_channel_name


class Naive:
    def __init__(self, database_url: str, channel: str, cap: int) -> None:
        self.database_url = database_url
        self.listen = sql.SQL("LISTEN {}").format(sql.Identifier(pg_channel_name(channel)))
        self.cap = cap
        self.streams = 0
        self.tasks: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            if self.streams >= self.cap:
                writer.write(REFUSED)
                return
            self.streams += 1
            try:
                await self.stream(reader, writer)
            finally:
                self.streams -= 1
        except (OSError, asyncio.IncompleteReadError, psycopg.OperationalError):
            with contextlib.suppress(OSError):
                writer.write(REFUSED)
        finally:
            self.tasks.discard(task)
            writer.close()

    async def stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True
        ) as conn:
            await conn.execute(self.listen)
            writer.write(STREAM_HEAD + GREETING)
            relay = asyncio.create_task(self.relay(conn, writer))
            try:
                await reader.read()  # until the client goes away
            finally:
                relay.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay

    async def relay(
        self, conn: psycopg.AsyncConnection[object], writer: asyncio.StreamWriter
    ) -> None:
        async for notify in conn.notifies():
            writer.write(frame_from_payload(notify.payload))


async def serve(port: int, database_url: str, channel: str, cap: int) -> None:
    naive = Naive(database_url, channel, cap)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    server = await asyncio.start_server(naive.handle, "127.0.0.1", port, backlog=4096)
    print(READY, file=sys.stderr, flush=True)
    await stop.wait()
    server.close()
    for task in list(naive.tasks):
        task.cancel()
    await asyncio.gather(*naive.tasks, return_exceptions=True)


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])))
