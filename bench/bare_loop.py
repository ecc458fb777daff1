"""The baseline fan-out server: a bare asyncio loop that writes each frame to every socket.

``python -m bench.bare_loop PORT DATABASE_URL CHANNEL``. One LISTEN connection (the same
notifications pgsse's hub gets), each payload encoded once, then one ``write()`` per open
socket. No framework, no per-stream task, no buffering policy, no heartbeats, no log replay:
the floor that any SSE server on this machine pays, against which pgsse is reported.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import cast

import psycopg
import uvloop
from psycopg import sql

from bench.servers import READY
from bench.sse_wire import GREETING, STREAM_HEAD, frame_from_payload
from pgsse.channels import pg_channel_name


class StreamProtocol(asyncio.Protocol):
    """One client: answer the first request with a stream and join the fan-out set."""

    __slots__ = ("streams", "transport")

    def __init__(self, streams: set[asyncio.Transport]) -> None:
        self.streams = streams
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        # One GET per connection; the request is read, never parsed.
        if self.transport is not None and self.transport not in self.streams:
            self.transport.write(STREAM_HEAD + GREETING)
            self.streams.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.streams.discard(self.transport)


async def serve(port: int, database_url: str, channel: str) -> None:
    streams: set[asyncio.Transport] = set()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(pg_channel_name(channel))))
    # SO_REUSEPORT: a second process on the same port shares the connections (two workers).
    server = await loop.create_server(
        lambda: StreamProtocol(streams), "127.0.0.1", port, backlog=4096, reuse_port=True
    )
    print(READY, file=sys.stderr, flush=True)

    async def fan_out() -> None:
        async for notify in conn.notifies():
            frame = frame_from_payload(notify.payload)
            for transport in streams:
                transport.write(frame)

    task = asyncio.create_task(fan_out())
    await stop.wait()
    task.cancel()
    server.close()
    for transport in list(streams):
        transport.abort()
    await conn.close()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
