"""Stream clients that behave like browsers, over bare asyncio sockets (thousands per process).

A :class:`StreamClient` follows one room's stream (three channels: messages, presence,
typing), authenticated with an API token, and reconnects as ``EventSource`` does: after the
server's ``retry:`` delay, with the id of the last complete event as ``Last-Event-ID``, to
a worker chosen at random. It records every event as (channel, seq, CRC of its data, time
received), and every connection as a :class:`Connection` (which worker, when, how it
ended), for the invariant checker.

Two faults are the client's own: :meth:`StreamClient.freeze` stops reading (the socket's
receive buffer is small, so the server's writes soon block), and
:meth:`StreamClient.drop_mid_event` cuts the connection with a reset half-way through an
event's frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
import zlib
from array import array
from dataclasses import dataclass, field

#: Small, so that a client that stops reading blocks the server's writes sooner.
FROZEN_RECEIVE_BUFFER = 4096


@dataclass
class Connection:
    port: int
    opened: float
    status: int = 0
    live_at: float | None = None  # first id received: the client knows its position
    closed: float | None = None
    #: How it ended: "retry" (the server ended it with retry:), "eof" (cut without retry:),
    #: "error", "frozen" or "dropped" (the client's own faults), "stopped" (end of run),
    #: "refused" (no answer, or a status other than 200).
    ended: str = ""
    last_id_in: str = ""  # the Last-Event-ID it was opened with
    events: int = 0
    frozen: bool = False  # the client stopped reading it for a while


@dataclass
class ChannelLog:
    seqs: array[int] = field(default_factory=lambda: array("q"))
    crcs: array[int] = field(default_factory=lambda: array("L"))
    times: array[float] = field(default_factory=lambda: array("d"))


class StreamClient:
    def __init__(
        self, index: int, ports: list[int], path: str, token: str, channels: tuple[str, ...]
    ) -> None:
        self.index = index
        self.ports = ports
        self.path = path
        self.token = token
        #: The stream's channels in the canonical order of its ids.
        self.channels = channels
        self.logs = {channel: ChannelLog() for channel in channels}
        self.connections: list[Connection] = []
        self.resets: list[tuple[float, str]] = []
        self.last_id = ""
        self.position: list[int] | None = None
        #: The position first known: where the invariant checker starts.
        self.first_position: list[int] | None = None
        self.retry = 0.5
        self.live = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._freeze_until = 0.0
        self._drop = False
        self._stopping = False
        self.frozen_reads_blocked = False

    # -- control ---------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self.connections and not self.connections[-1].ended:
            self.connections[-1].ended = "stopped"
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def freeze(self, seconds: float) -> None:
        """Stop reading for ``seconds``: the connection is opened again with a tiny receive
        buffer, and left unread."""
        self._freeze_until = time.monotonic() + seconds
        if self._writer is not None and self.connections:
            self.connections[-1].ended = "frozen"
            self._writer.close()

    def thaw(self) -> None:
        """Read again (what the kernel kept, then whatever the server does next)."""
        self._freeze_until = 0.0

    def drop_mid_event(self) -> None:
        """Cut the connection with a reset half-way through the next event's frame."""
        self._drop = True

    def received(self, channel: str) -> int:
        return len(self.logs[channel].seqs)

    def at_least(self, heads: dict[str, int]) -> bool:
        """Whether this client has received every channel up to ``heads``."""
        if self.position is None:
            return False
        return all(
            self.position[i] >= heads.get(channel, 0) for i, channel in enumerate(self.channels)
        )

    # -- connection loop -------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            port = random.choice(self.ports)
            connection = Connection(port, time.time(), last_id_in=self.last_id)
            self.connections.append(connection)
            try:
                await self._connect(connection)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                if not connection.ended:
                    connection.ended = "error" if connection.status == 200 else "refused"
                connection.status = connection.status or -1
                del exc
            finally:
                connection.closed = time.time()
                if connection.frozen and connection.ended != "stopped":
                    connection.ended = "frozen"  # whatever ended it, the freeze caused it
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
            if self._stopping:
                connection.ended = connection.ended or "stopped"
                return
            # EventSource waits the retry delay (a little jittered by the browser's timer).
            await asyncio.sleep(self.retry * random.uniform(1.0, 1.2))

    async def _connect(self, connection: Connection) -> None:
        frozen = time.monotonic() < self._freeze_until
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if frozen:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, FROZEN_RECEIVE_BUFFER)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", connection.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        self._writer = writer
        resume = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id else ""
        writer.write(
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{resume}"
            f"Authorization: Bearer {self.token}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        connection.status = int(head.split(b" ", 2)[1])
        if connection.status != 200:
            connection.ended = "refused"
            return
        pending = b""
        last_was_retry = False
        while True:
            if time.monotonic() < self._freeze_until:
                # Not even asyncio's buffer reads on: the kernel's fills, then the server's.
                connection.frozen = True
                transport: asyncio.Transport = writer.transport  # type: ignore[assignment]
                transport.pause_reading()
                while time.monotonic() < self._freeze_until:
                    await asyncio.sleep(0.1)
                transport.resume_reading()
            size_line = await reader.readline()
            if not size_line:
                raise asyncio.IncompleteReadError(b"", None)
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                connection.ended = connection.ended or ("retry" if last_was_retry else "eof")
                return
            pending += (await reader.readexactly(size + 2))[:-2]
            *frames, pending = pending.split(b"\n\n")
            if self._drop and any(b"event: " in frame for frame in frames):
                self._drop = False
                frames = self._cut(frames)
                for frame in frames:
                    last_was_retry = self._frame(frame, connection)
                connection.ended = "dropped"
                # A reset, as a network that fails mid-transfer would leave it.
                linger = struct.pack("ii", 1, 0)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                writer.transport.abort()
                return
            for frame in frames:
                last_was_retry = self._frame(frame, connection)

    @staticmethod
    def _cut(frames: list[bytes]) -> list[bytes]:
        """The complete frames before the first event's frame, which is half-received."""
        first = next(i for i, frame in enumerate(frames) if b"event: " in frame)
        return frames[:first]

    # -- frames ------------------------------------------------------------------------

    def _frame(self, frame: bytes, connection: Connection) -> bool:
        """Record one SSE frame; return whether it was a retry: frame."""
        event = data = event_id = None
        retry = False
        for line in frame.split(b"\n"):
            if line.startswith(b"id: "):
                event_id = line[4:].decode()
            elif line.startswith(b"event: "):
                event = line[7:].decode()
            elif line.startswith(b"data: "):
                data = line[6:] if data is None else data + b"\n" + line[6:]
            elif line.startswith(b"retry: "):
                self.retry = int(line[7:]) / 1000
                retry = True
        if event_id is None:
            return retry
        seqs = [int(s) for s in event_id.split(":", 1)[1].split(".")]
        now = time.time()
        if event == "reset":
            self.resets.append((now, (data or b"").decode()))
        elif event is not None and self.position is not None:
            changed = [
                i for i, (a, b) in enumerate(zip(self.position, seqs, strict=True)) if a != b
            ]
            if len(changed) != 1:
                raise ValueError(f"an event moved {len(changed)} channels: {event_id}")
            log = self.logs[self.channels[changed[0]]]
            log.seqs.append(seqs[changed[0]])
            log.crcs.append(zlib.crc32(data or b""))
            log.times.append(now)
            connection.events += 1
        if self.first_position is None:
            self.first_position = seqs
        self.position = seqs
        self.last_id = event_id
        if connection.live_at is None:
            connection.live_at = now
            self.live.set()
        return retry
