"""Publishing from the driver process, on the bench database, the way each server is fed.

- pgsse, its variants, the chat and both baselines: ``pgsse.publish`` (the baselines LISTEN
  on pgsse's channel and relay its notifications);
- pg-sse: an INSERT into its table, whose trigger NOTIFYs (the application's own write);
- django-eventstream: ``send_event`` must run inside the server process (its fan-out is in
  memory), so the driver POSTs each event to the peer's bench-only ``/publish/`` view.

Every event's data is about 100 bytes of JSON: ``"t"`` (``time.monotonic()`` at publish,
read by the client for latency), ``"n"`` (its number in the run: the client checks every
stream gets each number once, in order) and padding.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from typing import Any, Protocol

from bench.database import BenchDatabase
from bench.peer_tables import PG_SSE_TABLE
from tests.processes import PYTHONPATH

#: Padding that makes an event's data about 100 bytes, as in the design's measurements.
PAD = "x" * 64


def setup_django(database: BenchDatabase) -> None:
    """Configure Django in this process with the test settings on the bench database.

    Without the chat's connection pool: the bench's publishers are threads of this process
    that each keep a connection for the whole run, as the plain INSERT baseline's do (a
    pool of 8 would make 32 publishers wait for each other's connections).
    """
    os.environ.update(database.environment())
    for entry in reversed(PYTHONPATH.split(os.pathsep)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    import django

    # Read by the settings module as Django imports it; not left for the servers this
    # process starts (the chat's keeps its pool).
    pool_size = os.environ.pop("DJANGO_DB_POOL_SIZE", None)
    os.environ["DJANGO_DB_POOL_SIZE"] = "0"
    try:
        django.setup()
    finally:
        del os.environ["DJANGO_DB_POOL_SIZE"]
        if pool_size is not None:
            os.environ["DJANGO_DB_POOL_SIZE"] = pool_size


def timed_data(number: int = 0) -> dict[str, object]:
    """Event data stamped with the publish time and its number."""
    return {"t": time.monotonic(), "n": number, "pad": PAD}


class Publisher(Protocol):
    def publish(self, number: int) -> float:
        """Publish event ``number``; return the seconds the call took (its commit too)."""
        ...

    def close(self) -> None: ...


class PgssePublisher:
    """``pgsse.publish``; with ``notify``, under that ``PGSSE["NOTIFY"]`` until closed."""

    def __init__(self, channel: str, notify: str | None = None) -> None:
        self.channel = channel
        self.settings: Any = None
        if notify is not None:
            from django.conf import settings
            from django.test import override_settings

            self.settings = override_settings(
                PGSSE={**getattr(settings, "PGSSE", {}), "NOTIFY": notify}
            )
            self.settings.enable()

    def publish(self, number: int) -> float:
        import pgsse

        started = time.monotonic()
        pgsse.publish(self.channel, "e", timed_data(number))
        return time.monotonic() - started

    def close(self) -> None:
        if self.settings is not None:
            self.settings.disable()
            self.settings = None
        close_django_connections()


class TablePublisher:
    """pg-sse's writer: an INSERT in autocommit; its trigger NOTIFYs the room's key."""

    def __init__(self, room: str) -> None:
        self.room = room

    def publish(self, number: int) -> float:
        from django.db import connection

        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {PG_SSE_TABLE} (room, data) VALUES (%s, %s)",
                (self.room, json.dumps(timed_data(number), separators=(",", ":"))),
            )
        return time.monotonic() - started

    def close(self) -> None:
        close_django_connections()


class HttpPublisher:
    """django-eventstream's writer: POST to the server, which calls ``send_event``."""

    def __init__(self, port: int, channel: str) -> None:
        self.path = f"/publish/{channel}/"
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def publish(self, number: int) -> float:
        started = time.monotonic()
        body = json.dumps(timed_data(number))
        try:
            response = self._post(body)
        except (ConnectionError, http.client.HTTPException):
            # uvicorn closes an idle keep-alive connection after 5 s: open another.
            self.connection.close()
            response = self._post(body)
        if response.status != 204:
            raise RuntimeError(f"the peer refused an event: HTTP {response.status}")
        return time.monotonic() - started

    def _post(self, body: str) -> http.client.HTTPResponse:
        self.connection.request(
            "POST", self.path, body, {"Content-Type": "application/json", "Host": "127.0.0.1"}
        )
        response = self.connection.getresponse()
        response.read()
        return response

    def close(self) -> None:
        self.connection.close()


def publisher_for(kind: str, port: int, channel: str) -> Publisher:
    from bench.servers import KINDS

    publisher = KINDS[kind].publisher if kind in KINDS else "pgsse"
    if publisher == "pg-sse":
        return TablePublisher(channel)
    if publisher == "eventstream":
        return HttpPublisher(port, channel)
    if publisher == "pgsse-notify-in-transaction":
        return PgssePublisher(channel, notify="in_transaction")
    return PgssePublisher(channel)


def publish_for(channel: str, seconds: float) -> float:
    """Publish as fast as one caller can for ``seconds``; return publishes per second."""
    import pgsse

    count = 0
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline:
        pgsse.publish(channel, "e", timed_data())
        count += 1
    return count / (time.monotonic() - started)


def close_django_connections() -> None:
    """Close this thread's Django connections (they would count as the server's)."""
    from django.db import connections

    connections.close_all()
