"""Clients opening SSE streams: as fast as a server takes them, or at a fixed rate (a wave).

``python -m bench.open_wave --port 8000 --path /rooms/lobby/events/ --clients 10000
--rate 1000 [--cookies FILE | --tokens FILE] [--patience 10] [--hold]``

Each client connects (from source addresses spread over 127.0.1.1-64, as the bench's load
client does, so that neither ephemeral ports nor pgsse's per-address open rate run short),
sends its GET and waits for its stream's first frame (an ``id:`` or an ``event:``: the
stream is live). It counts as *admitted* then; as *refused* if the answer is not 200 (by
status); as *failed* if the connection fails or closes first; as *gave up* if no first
frame came within ``--patience`` seconds of its start (it then closes its connection, as
an impatient client would).

- ``--rate 0``: *as fast as the server takes them*, at most ``OPENING`` clients waiting
  for their first frame at once (a new one starts as soon as one is settled). The open
  rate is the admitted clients over the seconds from the first start to the last first
  frame.
- ``--rate R``: client ``i`` starts at ``i / R`` seconds, whatever the others are doing:
  every client of a restarted worker reconnecting within seconds. Time to first frame is
  counted from each client's own start.

It prints one JSON line once every client has settled (``--hold``: then keeps the admitted
streams open until a line arrives on stdin, so that a driver can measure the server with
them open), closes everything and exits. Credentials: ``--cookies`` (a file of ``Cookie``
header values, one a line) or ``--tokens`` (API tokens, one a line, sent as
``Authorization: Bearer``), given to the clients in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import cast

import uvloop

from bench.procfs import raise_open_files_limit
from tests.chunked import ChunkedDecoder
from tests.sse_parser import EventStreamParser

#: Clients waiting for their first frame at once with ``--rate 0`` (as the bench's swarm).
OPENING = 64
#: Source addresses, in turn: 127.0.1.1 to 127.0.1.64 (see bench/swarm.py).
SOURCES = [f"127.0.1.{host}" for host in range(1, 65)]


class Wave:
    """Every client's outcome, as they settle."""

    def __init__(self, clients: int) -> None:
        self.clients = clients
        self.first_frames: list[float] = []  # seconds from each admitted client's start
        self.admitted_at: list[float] = []  # monotonic time of each first frame
        self.refused: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.gave_up = 0
        self.streams: list[OpeningClient] = []

    def summary(self, started: float) -> dict[str, object]:
        ordered = sorted(self.first_frames)
        last = max(self.admitted_at, default=started)
        seconds = last - started
        return {
            "clients": self.clients,
            "admitted": len(ordered),
            "refused": dict(self.refused),
            "failed": dict(self.failed),
            "gave_up": self.gave_up,
            "seconds": seconds,
            "opens_per_second": len(ordered) / seconds if seconds > 0 else 0.0,
            "first_frame_ms": {
                "p50": _quantile(ordered, 0.50),
                "p90": _quantile(ordered, 0.90),
                "p99": _quantile(ordered, 0.99),
                "max": ordered[-1] * 1000 if ordered else None,
            },
        }


def _quantile(ordered: list[float], q: float) -> float | None:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else None


class OpeningClient(asyncio.Protocol):
    """One client: its request, then the answer's head, then frames until the first."""

    def __init__(self, wave: Wave, request: bytes, started: float) -> None:
        self.wave = wave
        self.request = request
        self.started = started
        self.status = 0
        self.head = b""
        self.body: ChunkedDecoder | None = None
        self.parser = EventStreamParser(every_frame=True)
        self.transport: asyncio.Transport | None = None
        self.settled = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.settled.done():
            return
        if not self.status:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = int(self.head[9:12])
            data, head = self.head[end + 4 :], self.head[:end].lower()
            self.head = b""
            if self.status != 200:
                self.wave.refused[str(self.status)] += 1
                self._settle(close=True)
                return
            self.body = ChunkedDecoder() if b"transfer-encoding: chunked" in head else None
        payload = self.body.feed(data) if self.body is not None else data
        if any("id" in f.fields or "event" in f.fields for f in self.parser.feed(payload)):
            now = time.monotonic()
            self.wave.first_frames.append(now - self.started)
            self.wave.admitted_at.append(now)
            self.wave.streams.append(self)
            self._settle(close=False)
            assert self.transport is not None
            self.transport.pause_reading()  # held open; what follows is not measured

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.settled.done():
            reason = "closed before the answer" if not self.status else "closed after 200"
            self.wave.failed[reason] += 1
            self._settle(close=False)

    def give_up(self) -> None:
        if not self.settled.done():
            self.wave.gave_up += 1
            self._settle(close=True)

    def _settle(self, close: bool) -> None:
        self.settled.set_result(None)
        if close and self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def request_for(port: int, path: str, header: str) -> bytes:
    extra = f"{header}\r\n" if header else ""
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n{extra}\r\n"
    ).encode()


async def open_one(
    wave: Wave, index: int, port: int, path: str, header: str, patience: float
) -> None:
    loop = asyncio.get_running_loop()
    request = request_for(port, path.replace("{n}", str(index)), header)
    client = OpeningClient(wave, request, time.monotonic())
    source = SOURCES[index % len(SOURCES)]
    try:
        await asyncio.wait_for(
            loop.create_connection(lambda: client, "127.0.0.1", port, local_addr=(source, 0)),
            patience,
        )
    except TimeoutError:
        client.give_up()
        return
    except OSError as error:
        name = errno.errorcode.get(error.errno or 0, type(error).__name__)
        wave.failed[name] += 1
        return
    left = patience - (time.monotonic() - client.started)
    try:
        await asyncio.wait_for(asyncio.shield(client.settled), max(0.0, left))
    except TimeoutError:
        client.give_up()


async def run(
    port: int, path: str, clients: int, rate: float, headers: list[str], patience: float
) -> tuple[Wave, float]:
    wave = Wave(clients)
    started = time.monotonic()

    def header(index: int) -> str:
        return headers[index % len(headers)] if headers else ""

    if rate <= 0:
        slots = asyncio.Semaphore(OPENING)

        async def in_turn(index: int) -> None:
            async with slots:
                await open_one(wave, index, port, path, header(index), patience)

        await asyncio.gather(*(in_turn(index) for index in range(clients)))
        return wave, started
    tasks = []
    for index in range(clients):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(
            asyncio.ensure_future(open_one(wave, index, port, path, header(index), patience))
        )
    await asyncio.gather(*tasks)
    return wave, started


def credentials(cookies: Path | None, tokens: Path | None) -> list[str]:
    """The header each client sends, in turn: ``Cookie: ...`` or ``Authorization: ...``."""
    if cookies is not None:
        return [f"Cookie: {line}" for line in cookies.read_text().split()]
    if tokens is not None:
        return [f"Authorization: Bearer {line}" for line in tokens.read_text().split()]
    return []


async def main(arguments: argparse.Namespace) -> None:
    headers = credentials(arguments.cookies, arguments.tokens)
    wave, started = await run(
        arguments.port,
        arguments.path,
        arguments.clients,
        arguments.rate,
        headers,
        arguments.patience,
    )
    sys.stdout.write(json.dumps(wave.summary(started)) + "\n")
    sys.stdout.flush()
    if arguments.hold:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for client in wave.streams:
        client.close()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.open_wave", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--path", required=True, help="the stream's path; {n} is replaced by the client's number"
    )
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="clients started per second (0: in turn)"
    )
    parser.add_argument("--patience", type=float, default=10.0, help="seconds per client")
    found = parser.add_mutually_exclusive_group()
    found.add_argument("--cookies", type=Path, help="Cookie header values, one a line")
    found.add_argument("--tokens", type=Path, help="API tokens, one a line")
    parser.add_argument("--hold", action="store_true", help="keep streams open until stdin")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise_open_files_limit()
    uvloop.run(main(parse(sys.argv[1:])))
