"""The one LISTEN connection of a process: keep it alive and LISTENing to what the hub wants.

Design around psycopg's ``notifies()``: it holds the connection's lock for as long as it
iterates, so no LISTEN or health query can run on the connection meanwhile. We iterate it
in a task of its own and, when the hub changes what it wants, *cancel* that task: the
connection is idle while it waits for notifications (no query in flight), so cancelling
the wait is clean, and notifications that reached the socket stay there (or in psycopg's
backlog) for the next ``notifies()`` call. This gives LISTEN latency of one round trip,
where fixed timeout slices would make every new channel wait for the slice to end.

The connection is declared dead when reading fails, or when a health query sent after
``HEALTH_INTERVAL`` seconds of silence does not answer within ``HEALTH_TIMEOUT``. Then the
listener reconnects with exponential backoff and jitter and LISTENs again to everything;
the hub gap-fills from the log (``on_listening`` is called with every channel). While it
is away, ``on_lost`` has told the hub that no channel is LISTENed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql

from pgsse import jitter
from pgsse.conf import PgsseSettings

__all__ = ["LISTEN_CHUNK", "Listener"]

logger = logging.getLogger("pgsse.listener")

#: Channels LISTENed (or UNLISTENed) per statement at most.
LISTEN_CHUNK = 1000
#: Seconds :meth:`Listener.close` waits for its cancelled task before cancelling it again.
CANCEL_AGAIN_AFTER = 1.0

Connect = Callable[[], Awaitable[AsyncConnection[Any]]]


class Listener:
    """Owns a dedicated autocommit connection; reports notifications and LISTEN changes."""

    def __init__(
        self,
        connect: Connect,
        on_notify: Callable[[str, str], None],
        on_listening: Callable[[set[str]], None],
        on_lost: Callable[[], None],
        settings: PgsseSettings,
    ) -> None:
        self._connect = connect
        self._on_notify = on_notify
        self._on_listening = on_listening
        self._on_lost = on_lost
        self._settings = settings
        self._wanted: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._delay = settings.RECONNECT_MIN_DELAY
        #: PostgreSQL channels the current connection LISTENs to.
        self.listening: frozenset[str] = frozenset()
        #: Backend pid of the current connection, None while disconnected.
        self.backend_pid: int | None = None
        #: Number of connections made since start (1 means never reconnected).
        self.connections_made = 0
        #: Notifications whose handling raised (each logged with its traceback).
        self.failures = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pgsse-listener")

    def want_more(self, pg_channel: str) -> None:
        """LISTEN to ``pg_channel`` as soon as possible."""
        self._wanted.add(pg_channel)
        self._wake.set()

    def want_less(self, pg_channel: str) -> None:
        """UNLISTEN ``pg_channel`` as soon as possible."""
        self._wanted.discard(pg_channel)
        self._wake.set()

    async def close(self) -> None:
        task, self._task = self._task, None
        # Cancelled until it ends: a cancellation that arrives just as an awaited
        # operation completes can be lost on the way (Python 3.11's asyncio.wait_for
        # did so, in a library as much as here), and the task would then run on.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=CANCEL_AGAIN_AFTER)
        if task is not None and not task.cancelled() and task.exception() is not None:
            logger.warning("the listener had failed", exc_info=task.exception())

    async def _run(self) -> None:
        while True:
            conn: AsyncConnection[Any] | None = None
            try:
                conn = await self._connect()
                self.connections_made += 1
                self.backend_pid = conn.info.backend_pid
                logger.info("listener connected (backend pid %s)", self.backend_pid)
                await self._serve(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: drop the connection and start over
                logger.warning(
                    "listener connection lost: %s; reconnecting in %.2fs",
                    exc,
                    self._delay,
                    exc_info=not isinstance(exc, OSError | psycopg.OperationalError),
                )
            finally:
                self.backend_pid = None
                was_listening, self.listening = self.listening, frozenset()
                if was_listening:
                    self._on_lost()
                if conn is not None:
                    await conn.close()
            # Full jitter keeps a fleet of workers from reconnecting in lockstep.
            await asyncio.sleep(jitter.uniform(self._delay / 2, self._delay))
            self._delay = min(self._delay * 2, self._settings.RECONNECT_MAX_DELAY)

    def _reset_delay(self) -> None:
        # Only a connection that LISTENed and read resets the backoff: one that fails right
        # after connecting (a standby refusing LISTEN) must not reconnect in a tight loop.
        self._delay = self._settings.RECONNECT_MIN_DELAY

    async def _serve(self, conn: AsyncConnection[Any]) -> None:
        timeout = self._settings.HEALTH_TIMEOUT
        last_alive = time.monotonic()
        while True:
            self._wake.clear()
            if await self._apply(conn):
                last_alive = time.monotonic()
            if await self._receive(conn):
                last_alive = time.monotonic()
                self._reset_delay()
            if time.monotonic() - last_alive >= self._settings.HEALTH_INTERVAL:
                # Silence (or only LISTEN changes) for a while: make sure the peer answers.
                async with asyncio.timeout(timeout):
                    await conn.execute("SELECT 1")
                last_alive = time.monotonic()
                self._reset_delay()

    async def _apply(self, conn: AsyncConnection[Any]) -> bool:
        """LISTEN/UNLISTEN to match what is wanted; True if a statement ran.

        In statements of at most ``LISTEN_CHUNK`` channels, each given ``HEALTH_TIMEOUT``:
        PostgreSQL's cost of a LISTEN grows with the channels the session already listens
        to (10,000 channels in one statement took 0.41 s, 50,000 took 5.4 s), so after a
        reconnect one statement for every channel would never finish in time above about
        45,000. Each chunk is announced once in place, so those streams go on at once.
        """
        timeout = self._settings.HEALTH_TIMEOUT
        ran = False
        while True:
            wanted = frozenset(self._wanted)
            removed = sorted(self.listening - wanted)[:LISTEN_CHUNK]
            added = sorted(wanted - self.listening)[: LISTEN_CHUNK - len(removed)]
            if not removed and not added:
                return ran
            statements = [sql.SQL("UNLISTEN {}").format(sql.Identifier(n)) for n in removed]
            statements += [sql.SQL("LISTEN {}").format(sql.Identifier(n)) for n in added]
            async with asyncio.timeout(timeout):
                await conn.execute(sql.SQL("; ").join(statements))
            ran = True
            self.listening = (self.listening - set(removed)) | set(added)
            if added:
                # LISTEN is in place: the hub may now read heads and release waiting streams.
                self._on_listening(set(added))

    async def _receive(self, conn: AsyncConnection[Any]) -> bool:
        """Deliver notifications until woken or ``HEALTH_INTERVAL`` passes; True if any came."""
        drain = asyncio.ensure_future(self._drain(conn))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((drain, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (drain, woken):
                task.cancel()
            await asyncio.gather(drain, woken, return_exceptions=True)
        if drain.cancelled():
            return False  # woken for a LISTEN change
        return drain.result()

    async def _drain(self, conn: AsyncConnection[Any]) -> bool:
        received = False
        async for notify in conn.notifies(timeout=self._settings.HEALTH_INTERVAL):
            received = True
            try:
                self._on_notify(notify.channel, notify.payload)
            except Exception:
                logger.exception("failed to handle a notification on %s", notify.channel)
                self.failures += 1
        return received
