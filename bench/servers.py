"""The servers under test, each in its own process(es) on 127.0.0.1, and how to start them.

Every uvicorn server runs through :mod:`bench.uvicorn_worker` (uvicorn with uvloop and
httptools, plus a tally of the garbage collector's pauses); with ``workers=2`` two such
processes share the port (``SO_REUSEPORT``: the kernel spreads connections between them).

- ``pgsse``: ``tests.asgi:application``, the test project wrapped by ``pgsse.asgi.wrap()``
  as users deploy it, serving ``/events/<channel>/`` (tests/urls.py);
- ``pgsse-plain``: the same project through Django's ASGI handler without the wrapper
  (:mod:`bench.django_plain_asgi`), the path of users who do not wrap;
- ``pgsse-asgi``: pgsse's stream core behind a plain ASGI endpoint (:mod:`bench.asgi_endpoint`);
- ``chat``: the chat's room stream ``/rooms/<slug>/events/`` (three channels, a session
  cookie per stream) on the same wrapped application with the chat's URLs;
- ``pg-sse``: the pg-sse peer (:mod:`bench.pg_sse_peer`, Starlette);
- ``eventstream``: the django-eventstream peer (:mod:`bench.eventstream_site`);
- ``bare``: the bare asyncio loop of :mod:`bench.bare_loop`, the floor any server pays;
- ``naive``: one LISTEN connection per stream, :mod:`bench.naive_listen`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time
from dataclasses import dataclass, field
from types import TracebackType

from bench.database import BenchDatabase
from bench.procfs import Usage, usage
from tests.chunked import ChunkedDecoder
from tests.processes import ServerProcess, free_port
from tests.sse_parser import EventStreamParser

#: The channel every single-channel stream follows (the bare loop and the naive server
#: ignore the path and serve it too).
CHANNEL = "room:bench"
#: The chat room whose stream the ``chat`` server serves (channels room:, presence:, typing:).
CHAT_ROOM = "bench"
#: What :mod:`bench.uvicorn_worker` prints once it listens.
READY = "bench: listening"

#: Caps of pg-sse, raised from its defaults (500 streams per process, 5 per key and owner)
#: so that the largest runs fit.
PG_SSE_CAPS = {"PG_SSE_MAX_SUBSCRIBERS": "100000", "PG_SSE_MAX_PER_OWNER": "100000"}
#: pgsse's cap on streams per process (MAX_STREAMS, 10,000 by default) raised likewise: two
#: workers sharing a port with SO_REUSEPORT do not get 10,000 of 20,000 streams each (the
#: kernel's spread measured 10,096 to 9,904), and a refusal would end the run.
PGSSE_MAX_STREAMS = 100_000
PGSSE_CAPS = {"TEST_PGSSE": json.dumps({"MAX_STREAMS": PGSSE_MAX_STREAMS})}


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    #: ``python -m`` arguments after ``sys.executable``; ``{port}``, ``{url}`` and
    #: ``{channel}`` are filled in.
    command: tuple[str, ...]
    path: str = f"/events/{CHANNEL}/"
    #: Who publishes its events: "pgsse" (pgsse.publish), "pgsse-notify-in-transaction"
    #: (the same with PGSSE["NOTIFY"] = "in_transaction"), "pg-sse" (an INSERT into its
    #: table) or "eventstream" (send_event inside the server, over HTTP).
    publisher: str = "pgsse"
    environment: dict[str, str] = field(default_factory=dict)
    #: Replays from Last-Event-ID (the reconnect storm applies).
    replays: bool = True
    #: The table its replays read, for the storm's count of reads.
    log_table: str = "pgsse_event"


def _uvicorn(app: str, lifespan: str = "on") -> tuple[str, ...]:
    return ("-m", "bench.uvicorn_worker", app, "{port}", "--lifespan", lifespan)


KINDS = {
    kind.name: kind
    for kind in (
        Kind(
            "pgsse",
            "pgsse (wrap(), as deployed)",
            _uvicorn("tests.asgi:application"),
            environment=PGSSE_CAPS,
        ),
        Kind(
            "pgsse-notify-tx",
            "pgsse, each publish notifying in its transaction (NOTIFY in_transaction)",
            _uvicorn("tests.asgi:application"),
            publisher="pgsse-notify-in-transaction",
            environment=PGSSE_CAPS,
        ),
        Kind(
            "pgsse-plain",
            "pgsse, Django ASGI without wrap()",
            _uvicorn("bench.django_plain_asgi:application", lifespan="off"),
            environment=PGSSE_CAPS,
        ),
        Kind(
            "pgsse-takeover",
            "pgsse, wrap() taking streams over from Django's handler (design b)",
            _uvicorn("bench.takeover_asgi:application"),
            environment=PGSSE_CAPS,
        ),
        Kind(
            "pgsse-asgi",
            "pgsse core, plain ASGI endpoint",
            _uvicorn("bench.asgi_endpoint:application"),
        ),
        Kind(
            "chat",
            "chat room stream (3 channels, session)",
            _uvicorn("tests.asgi:application"),
            path=f"/rooms/{CHAT_ROOM}/events/",
            environment={"TEST_ROOT_URLCONF": "chatsite.urls", **PGSSE_CAPS},
        ),
        Kind(
            "pg-sse",
            "pg-sse 0.5 (Starlette)",
            _uvicorn("bench.pg_sse_peer:app"),
            publisher="pg-sse",
            environment=PG_SSE_CAPS,
            log_table="bench_peer_event",
        ),
        Kind(
            "eventstream",
            "django-eventstream 5.3 (DjangoModelStorage)",
            _uvicorn("bench.eventstream_site.asgi:application", lifespan="off"),
            publisher="eventstream",
            environment={"DJANGO_SETTINGS_MODULE": "bench.eventstream_site.settings"},
            log_table="django_eventstream_event",
        ),
        Kind(
            "bare",
            "bare asyncio loop",
            ("-m", "bench.bare_loop", "{port}", "{url}", "{channel}"),
            replays=False,
        ),
        Kind(
            "naive",
            "LISTEN per stream",
            ("-m", "bench.naive_listen", "{port}", "{url}", "{channel}", "{cap}"),
            replays=False,
        ),
    )
}


def label(name: str) -> str:
    return KINDS[name].label if name in KINDS else name


class Server:
    """``workers`` processes of one kind sharing a port: started, measured, always stopped."""

    def __init__(
        self,
        kind: str,
        database: BenchDatabase,
        workers: int = 1,
        cap: int = 0,
        **environment: str,
    ) -> None:
        self.kind = KINDS[kind]
        self.port = free_port()
        command = [
            sys.executable,
            *(
                part.format(port="{port}", url=database.url, channel=CHANNEL, cap=cap)
                for part in self.kind.command
            ),
        ]
        env = database.environment(**{**self.kind.environment, **environment})
        self.workers = [
            ServerProcess(command, database.url, port=self.port, **env) for _ in range(workers)
        ]

    def start(self) -> Server:
        try:
            for worker in self.workers:
                worker.start()
                self._wait_ready(worker)
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> Server:
        return self if self.workers[0].process is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_ready(self, worker: ServerProcess, timeout: float = 30) -> None:
        # The port answers as soon as the first worker listens: wait for each one's word.
        deadline = time.monotonic() + timeout
        while READY not in worker.output():
            if worker.process is not None and worker.process.poll() is not None:
                raise RuntimeError(f"{self.kind.name} exited early:\n{worker.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind.name} did not start:\n{worker.output()}")
            time.sleep(0.05)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    @property
    def pids(self) -> list[int]:
        return [worker.pid for worker in self.workers]

    def usage(self) -> Usage:
        """CPU, memory and threads of every worker, added up."""
        parts = [usage(pid) for pid in self.pids]
        return Usage(
            sum(part.cpu_seconds for part in parts),
            sum(part.rss_bytes for part in parts),
            sum(part.threads for part in parts),
        )

    def output(self) -> str:
        return "\n".join(worker.output() for worker in self.workers)

    def warm_up(self, cookie: str = "", connections: int = 4) -> None:
        """Serve a few streams to their first frame and close them: lazy imports happen now.

        Several, so that each worker sharing the port is likely to get one.
        """
        for _ in range(connections * len(self.workers)):
            with contextlib.suppress(OSError):
                self._first_frame(cookie)

    def _first_frame(self, cookie: str) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            extra = f"Cookie: {cookie}\r\n" if cookie else ""
            sock.sendall(
                f"GET {self.kind.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                received += chunk
            head, rest = received.split(b"\r\n\r\n", 1)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"{self.kind.name} refused the warm-up stream: {head!r}")
            body, frames = ChunkedDecoder(), EventStreamParser(every_frame=True)
            while not any(
                "id" in frame.fields or "event" in frame.fields
                for frame in frames.feed(body.feed(rest))
            ):
                rest = sock.recv(65536)
                if not rest:
                    return
