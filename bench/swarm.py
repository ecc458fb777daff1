"""The load client: many SSE streams over raw sockets in one uvloop process.

``python -m bench.swarm PORT PATH STREAMS PROBES CONNECT_TIMEOUT [COOKIES_FILE]``, driven over
stdin/stdout by :class:`bench.clients.Swarm` (which splits counts past 15,000 over several
such processes: a process may not hold more descriptors than the hard limit, 20,000 here).
It opens the streams (at most ``OPENING`` at once, from source addresses spread over
127.0.0.0/8 so that ephemeral ports never run short) and prints one JSON line once each is
live (its first ``id:`` or named event arrived), refused (not 200) or failed. Then it
answers one JSON line per command:

- ``expect N``: from now on every stream must receive events ``N, N+1, ...`` in that order;
- ``count``: events received so far, by the probes, and streams that got all expected so far;
- ``drain``: resume reading the streams that are not probes;
- ``check LAST``: how many streams received exactly ``N..LAST``, once each, in order;
- ``report``: every probe delivery's publish time and latency;
- ``disconnect`` / ``reconnect``: close every live stream, then open them all again at once,
  each with ``Last-Event-ID`` set to the last id it received (the reconnect storm);
- ``quit``.

Bytes are read with the tests' chunked-body decoder and SSE parser (tests/chunked.py,
tests/sse_parser.py). Every event's data is JSON carrying ``"t"``, ``time.monotonic()`` at
publish, and ``"n"``, its number in the run. So that the client is not what is measured,
only ``PROBES`` streams, spread evenly over the connection order, are read while events are
published; the others stop reading once live (``pause_reading``) and the kernel's socket
buffers hold their events, which the server has written all the same. A probe records
``now - t`` per event, ``now`` read once per socket read. CLOCK_MONOTONIC is system-wide on
Linux, so the publisher's clock and ours agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import sys
import time
from array import array
from collections import Counter
from typing import cast

import uvloop

from bench.procfs import raise_open_files_limit
from tests.chunked import ChunkedDecoder
from tests.sse_parser import EventStreamParser

#: Streams being opened at once (the rest wait): a burst of thousands of SYNs would
#: overflow the server's accept backlog and measure the kernel's retry timers.
OPENING = 64
#: Source addresses the streams connect from, in turn: 127.0.1.1 to 127.0.1.64. Each has
#: its own ephemeral ports (about 28,000), and closed connections keep theirs a minute.
SOURCES = [f"127.0.1.{host}" for host in range(1, 65)]


class Swarm:
    def __init__(self, port: int, path: str, streams: int, probes: int) -> None:
        self.port = port
        self.path = path
        self.streams = streams
        self.stride = max(1, -(-streams // max(1, probes)))  # at most ``probes`` probes
        self.refused = 0
        self.failed = 0
        #: Why streams failed to open: connect errors by name, and other ends.
        self.errors: Counter[str] = Counter()
        self.settled = asyncio.Event()
        self.protocols: list[StreamProtocol] = []
        #: Per probe delivery: the event's publish time and the latency.
        self.published = array("d")
        self.latencies = array("d")
        self.expected_first = 1
        self.reconnected_at = 0.0

    @property
    def live(self) -> int:
        return sum(1 for p in self.protocols if p.live)

    def settle(self) -> None:
        if sum(1 for p in self.protocols if p.settled) >= self.streams:
            self.settled.set()

    def expect(self, first: int) -> None:
        self.published = array("d")
        self.latencies = array("d")
        self.expected_first = first
        for protocol in self.protocols:
            protocol.expect(first)

    def drain(self) -> None:
        for protocol in self.protocols:
            if protocol.hold and protocol.live and not protocol.closed:
                protocol.transport.resume_reading()

    def counts(self, upto: int) -> dict[str, object]:
        live = [p for p in self.protocols if p.live]
        return {
            "received": sum(p.received for p in live),
            "probe_received": sum(p.received for p in live if p.probe),
            # Streams that received every event up to ``upto`` (when asked with one).
            "caught_up": sum(1 for p in live if upto and p.next_n > upto),
            "caught_up_seconds": max(
                (p.caught_up_at - self.reconnected_at for p in live if p.caught_up_at),
                default=None,
            ),
            "closed_by_server": sum(1 for p in live if p.closed),
        }

    def check(self, last: int) -> dict[str, object]:
        expected = last - self.expected_first + 1
        live = [p for p in self.protocols if p.live]
        complete = [p for p in live if p.errors == 0 and p.received == expected]
        return {
            "streams": len(live),
            "complete": len(complete),
            "out_of_order": sum(1 for p in live if p.errors),
            "short": sum(1 for p in live if p.errors == 0 and p.received < expected),
            "received": sum(p.received for p in live),
            "expected": expected * len(live),
        }

    def report(self) -> dict[str, object]:
        """Every probe delivery (publish time, latency): the driver computes the quantiles."""
        return {
            "published": list(self.published),
            "latencies": list(self.latencies),
            "closed_by_server": sum(1 for p in self.protocols if p.live and p.closed),
        }


class StreamProtocol(asyncio.Protocol):
    def __init__(
        self, swarm: Swarm, index: int, request: bytes, probe: bool, hold: bool = True
    ) -> None:
        self.swarm = swarm
        self.index = index
        self.request = request
        self.probe = probe
        #: Stop reading once live, unless a probe (see the module's docstring).
        self.hold = hold and not probe
        self.status = 0
        self.live = False
        self.settled = False
        self.closed = False
        self.head = b""
        self.body: ChunkedDecoder | None = None
        self.parser = EventStreamParser(every_frame=True)
        self.next_n = 1
        self.received = 0
        self.errors = 0
        self.caught_up_at = 0.0
        self.catch_up_to = 0
        self.opened = asyncio.get_running_loop().create_future()

    def expect(self, first: int) -> None:
        self.next_n = first
        self.received = 0
        self.errors = 0
        self.caught_up_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.status:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = int(self.head[9:12])
            data, head = self.head[end + 4 :], self.head[:end].lower()
            self.head = b""
            if self.status != 200:
                self.swarm.refused += 1
                self._settle()
                self.transport.close()
                return
            self.body = ChunkedDecoder() if b"transfer-encoding: chunked" in head else None
        payload = self.body.feed(data) if self.body is not None else data
        for frame in self.parser.feed(payload):
            if not self.live and ("id" in frame.fields or "event" in frame.fields):
                self.live = True
                self._settle()
                if self.hold:
                    self.transport.pause_reading()
            if '"t":' in frame.data:
                self._event(frame.data, now)

    def _event(self, data: str, now: float) -> None:
        values = json.loads(data)
        number = int(values["n"])
        self.received += 1
        if number != self.next_n:
            self.errors += 1  # a gap, a duplicate or a reordering
        self.next_n = number + 1
        if self.catch_up_to and not self.caught_up_at and number >= self.catch_up_to:
            self.caught_up_at = now
        if self.probe:
            published = float(values["t"])
            self.swarm.published.append(published)
            self.swarm.latencies.append(now - published)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.live:
            self.closed = True
        elif not self.status:
            self.swarm.failed += 1
            self.swarm.errors["closed before the response"] += 1
        elif self.status == 200:
            self.swarm.errors["closed after 200, before the first frame"] += 1
        self._settle()

    def _settle(self) -> None:
        self.settled = True
        if not self.opened.done():
            self.opened.set_result(None)
            self.swarm.settle()


def request_for(port: int, path: str, cookie: str = "", last_event_id: str = "") -> bytes:
    headers = f"Host: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
    if cookie:
        headers += f"Cookie: {cookie}\r\n"
    if last_event_id:
        headers += f"Last-Event-ID: {last_event_id}\r\n"
    return f"GET {path} HTTP/1.1\r\n{headers}\r\n".encode()


async def connect(protocol: StreamProtocol, port: int) -> None:
    loop = asyncio.get_running_loop()
    source = SOURCES[protocol.index % len(SOURCES)]
    try:
        await loop.create_connection(lambda: protocol, "127.0.0.1", port, local_addr=(source, 0))
    except OSError as error:
        protocol.swarm.failed += 1
        protocol.swarm.errors[errno.errorcode.get(error.errno or 0, type(error).__name__)] += 1
        protocol._settle()
        return
    await protocol.opened


async def open_streams(swarm: Swarm, cookies: list[str]) -> None:
    slots = asyncio.Semaphore(OPENING)

    async def open_one(index: int) -> None:
        async with slots:
            cookie = cookies[index % len(cookies)] if cookies else ""
            protocol = StreamProtocol(
                swarm, index, request_for(swarm.port, swarm.path, cookie), index % swarm.stride == 0
            )
            swarm.protocols.append(protocol)
            await connect(protocol, swarm.port)

    await asyncio.gather(*(open_one(index) for index in range(swarm.streams)))


def disconnect(swarm: Swarm) -> int:
    dropped = 0
    for protocol in swarm.protocols:
        if protocol.live and not protocol.closed:
            protocol.transport.abort()
            dropped += 1
    return dropped


async def reconnect(swarm: Swarm, cookies: list[str], catch_up_to: int) -> None:
    """Every stream that was live opens again at once, resuming from its last id."""
    swarm.reconnected_at = time.monotonic()
    old, swarm.protocols = [p for p in swarm.protocols if p.live], []
    swarm.settled.clear()
    swarm.streams, swarm.refused, swarm.failed = len(old), 0, 0
    fresh = []
    for before in old:
        cookie = cookies[before.index % len(cookies)] if cookies else ""
        request = request_for(swarm.port, swarm.path, cookie, before.parser.last_event_id)
        protocol = StreamProtocol(swarm, before.index, request, before.probe, hold=False)
        protocol.expect(swarm.expected_first)
        protocol.catch_up_to = catch_up_to
        fresh.append(protocol)
    swarm.protocols = fresh
    await asyncio.gather(*(connect(protocol, swarm.port) for protocol in fresh))


def say(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main(
    port: int, path: str, streams: int, probes: int, connect_timeout: float, cookies: list[str]
) -> None:
    swarm = Swarm(port, path, streams, probes)
    started = time.monotonic()
    opening = asyncio.ensure_future(open_streams(swarm, cookies))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(opening), connect_timeout)
    live = swarm.live
    say(
        {
            "live": live,
            "refused": swarm.refused,
            "failed": streams - live - swarm.refused,
            "probes": sum(1 for p in swarm.protocols if p.probe and p.live),
            "seconds": time.monotonic() - started,
            "errors": dict(swarm.errors),
            "pending": sum(1 for p in swarm.protocols if not p.settled),
        }
    )
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[None] | None = None
    while True:
        command, *arguments = (await loop.run_in_executor(None, sys.stdin.readline)).split() or [
            "quit"
        ]
        number = int(arguments[0]) if arguments else 0
        if command == "expect":
            swarm.expect(number)
            say({"ok": True})
        elif command == "count":
            say(swarm.counts(number))
        elif command == "drain":
            swarm.drain()
            say({"ok": True})
        elif command == "check":
            say(swarm.check(number))
        elif command == "report":
            say(swarm.report())
        elif command == "disconnect":
            say({"dropped": disconnect(swarm)})
        elif command == "reconnect":
            pending = asyncio.ensure_future(reconnect(swarm, cookies, number))
            say({"ok": True})
        else:  # "quit", or the driver went away
            break
    for task in (opening, pending):
        if task is not None:
            task.cancel()
    for protocol in swarm.protocols:
        if protocol.status:
            protocol.transport.abort()


if __name__ == "__main__":
    raise_open_files_limit()
    arguments = sys.argv[1:]
    cookie_lines: list[str] = []
    if len(arguments) > 5:
        with open(arguments[5]) as cookie_file:
            cookie_lines = cookie_file.read().split()
    uvloop.run(
        main(
            int(arguments[0]),
            arguments[1],
            int(arguments[2]),
            int(arguments[3]),
            float(arguments[4]),
            cookie_lines,
        )
    )
