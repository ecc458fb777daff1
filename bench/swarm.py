"""The load client: many SSE streams over raw sockets in one uvloop process.

``python -m bench.swarm PORT PATH STREAMS PROBES CONNECT_TIMEOUT``, driven over stdin/stdout
by :class:`bench.clients.Swarm`. It opens the streams (at most ``OPENING`` at once) and
prints one JSON line once each is live (its first ``id:`` arrived), refused (not 200) or
failed; then it answers ``reset``, ``count``, ``drain``, ``report`` and ``quit`` with one
JSON line each.

So that the client is not what is measured, only ``PROBES`` streams, spread evenly over
the connection order, are read while events are published; the others stop reading once
live (``pause_reading``) and the kernel's socket buffers hold their events, which the server
has written all the same. ``drain`` resumes them all, to count every delivery.

Every event's data carries ``"t":<time.monotonic() at publish>``; a probe records
``now - t`` per delivery, ``now`` read once per socket read. CLOCK_MONOTONIC is system-wide
on Linux, so the publisher's clock and ours agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
from array import array
from typing import cast

import uvloop

#: Streams being opened at once (the rest wait): a burst of thousands of SYNs would
#: overflow the server's accept backlog and measure the kernel's retry timers.
OPENING = 64
MARK = b'"t":'


class Swarm:
    def __init__(self, streams: int, probes: int) -> None:
        self.streams = streams
        self.stride = max(1, -(-streams // max(1, probes)))  # at most ``probes`` probes
        self.live = 0
        self.refused = 0
        self.failed = 0
        self.closed = 0
        self.settled = asyncio.Event()
        self.protocols: list[StreamProtocol] = []
        #: Per probe delivery: the event's publish time and the latency.
        self.published = array("d")
        self.latencies = array("d")
        self.probe_received = 0
        self.received = 0

    def settle(self) -> None:
        if self.live + self.refused + self.failed >= self.streams:
            self.settled.set()

    def reset(self) -> None:
        self.published = array("d")
        self.latencies = array("d")
        self.probe_received = self.received = 0

    def drain(self) -> None:
        for protocol in self.protocols:
            if not protocol.probe and protocol.live:
                protocol.transport.resume_reading()

    def report(self) -> dict[str, object]:
        ordered = sorted(self.latencies)
        # The time each event took to reach the last probe: fan-out completion.
        last_by_event: dict[float, float] = {}
        for published, latency in zip(self.published, self.latencies, strict=True):
            last_by_event[published] = max(latency, last_by_event.get(published, 0.0))
        completions = sorted(last_by_event.values())
        usage = resource.getrusage(resource.RUSAGE_SELF)

        def quantile(values: list[float], q: float) -> float | None:
            return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else None

        return {
            "received": self.received,
            "probes": sum(1 for p in self.protocols if p.probe and p.live),
            "probe_received": self.probe_received,
            "p50_ms": quantile(ordered, 0.50),
            "p90_ms": quantile(ordered, 0.90),
            "p99_ms": quantile(ordered, 0.99),
            "max_ms": ordered[-1] * 1000 if ordered else None,
            "all_probes_p50_ms": quantile(completions, 0.50),
            "closed_by_server": self.closed,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
        }


class StreamProtocol(asyncio.Protocol):
    def __init__(self, swarm: Swarm, request: bytes) -> None:
        self.swarm = swarm
        self.request = request
        self.probe = len(swarm.protocols) % swarm.stride == 0
        swarm.protocols.append(self)
        self.status = 0
        self.live = False
        self.tail = b""
        self.opened = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buffer = self.tail + data if self.tail else data
        if not self.status:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.tail = buffer
                return
            self.status = int(buffer[9:12])
            buffer = buffer[end + 4 :]
            if self.status != 200:
                self.swarm.refused += 1
                self._opened()
                self.transport.close()
                return
        if not self.live and b"id:" in buffer:
            self.live = True
            self.swarm.live += 1
            self._opened()
            if not self.probe:
                self.transport.pause_reading()
        swarm = self.swarm
        position = buffer.find(MARK)
        while position >= 0:
            end = buffer.find(b",", position)
            if end < 0:
                break
            swarm.received += 1
            if self.probe:
                published = float(buffer[position + 4 : end])
                swarm.published.append(published)
                swarm.latencies.append(now - published)
                swarm.probe_received += 1
            position = buffer.find(MARK, end)
        # Keep what may be the start of a marker split across two reads.
        self.tail = buffer[position:] if position >= 0 else buffer[-3:]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.live:
            self.swarm.closed += 1
        elif self.status == 0:
            self.swarm.failed += 1
        self._opened()

    def _opened(self) -> None:
        if not self.opened.done():
            self.opened.set_result(None)
            self.swarm.settle()


async def open_streams(swarm: Swarm, port: int, path: str) -> None:
    loop = asyncio.get_running_loop()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    slots = asyncio.Semaphore(OPENING)

    async def open_one() -> None:
        async with slots:
            protocol = StreamProtocol(swarm, request)
            try:
                await loop.create_connection(lambda: protocol, "127.0.0.1", port)
            except OSError:
                swarm.failed += 1
                swarm.settle()
                return
            await protocol.opened

    await asyncio.gather(*(open_one() for _ in range(swarm.streams)))


def say(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main(port: int, path: str, streams: int, probes: int, connect_timeout: float) -> None:
    swarm = Swarm(streams, probes)
    started = time.monotonic()
    opening = asyncio.ensure_future(open_streams(swarm, port, path))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(opening), connect_timeout)
    say(
        {
            "live": swarm.live,
            "refused": swarm.refused,
            "failed": streams - swarm.live - swarm.refused,
            "probes": sum(1 for p in swarm.protocols if p.probe and p.live),
            "seconds": time.monotonic() - started,
        }
    )
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line == "reset":
            swarm.reset()
            say({"ok": True})
        elif line == "count":
            say({"received": swarm.received, "probe_received": swarm.probe_received})
        elif line == "drain":
            swarm.drain()
            say({"ok": True})
        elif line == "report":
            say(swarm.report())
        else:  # "quit", or the driver went away
            break
    opening.cancel()
    for protocol in swarm.protocols:
        if protocol.status:
            protocol.transport.abort()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    uvloop.run(
        main(
            int(arguments[0]),
            arguments[1],
            int(arguments[2]),
            int(arguments[3]),
            float(arguments[4]),
        )
    )
