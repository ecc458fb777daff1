"""After commit, wake every process: one notifying transaction per short window.

A transaction that NOTIFYs takes a database-wide lock at commit, so PostgreSQL commits
notifying transactions one at a time. Publishing transactions therefore only append to
the log; once one commits, ``on_commit`` hands its events to this process's
:class:`Notifier`, a thread with a connection of its own. The thread sends whatever has
been handed over since its last round trip in one transaction: under load, many
publishers' commits share one notify lock; alone, an event is sent at once.

Notifications carry the event itself when it fits in PostgreSQL's payload limit, with the
seq its transaction got at commit (read back by id in the same round of the thread), so
that listening hubs deliver it without reading the log. The log stays the truth: should
this process die between a commit and its notification, or the thread fail to send it,
every hub's sweep finds the event within ``SWEEP_INTERVAL``.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pgsse import log

__all__ = ["Committed", "Notifier", "NotifierStats", "get_notifier", "stop_notifier"]

logger = logging.getLogger("pgsse.notifier")

#: Most notifications sent in one transaction: bounds what one statement carries.
MAX_PER_TRANSACTION = 5000
#: Seconds the process waits at exit for notifications not sent yet.
EXIT_FLUSH_TIMEOUT = 2.0
#: Seconds between attempts to reach the database after a failure.
RETRY_DELAY = 0.5
#: Least seconds between two notifying transactions of a process. An event committed while
#: the process is quiet is sent at once; under load, whatever commits within this window
#: shares one transaction, one notify lock, one wake-up of every listening backend.
NOTIFY_INTERVAL = 0.002
#: Seconds without anything to send after which the connection is closed: a process that
#: publishes now and then holds no PostgreSQL session in between (and a test database
#: can be dropped: PostgreSQL's DROP DATABASE waits up to 5 s for sessions to end).
IDLE_CLOSE = 2.0


@dataclass(frozen=True, slots=True)
class Committed:
    """An event its transaction committed, to be notified.

    ``seq`` and ``stamp`` (microseconds since the epoch) are known for events sequenced
    by their own statement (autocommit); staged events get theirs at commit, and the
    notifier reads them back by ``id``.
    """

    id: int
    channel: str
    pg_channel: str
    tail: str
    seq: int | None = None
    stamp: int | None = None


@dataclass(frozen=True, slots=True)
class NotifierStats:
    #: Notifications sent, and the transactions that sent them.
    notifications: int
    transactions: int
    #: Rounds that failed (their events are left to the hubs' sweep).
    failures: int
    #: Events handed over and not sent yet.
    pending: int


class Notifier:
    """Sends the notifications of committed events from a thread of its own.

    ``connect`` opens a psycopg connection in autocommit mode; the thread opens it when it
    first has something to send and keeps it.
    """

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._connection: Any = None
        self._lock = threading.Condition()
        self._pending: list[Committed] = []
        self._handed = 0  # events handed over since start
        self._done = 0  # events sent, or given up on
        self._notifications = 0
        self._transactions = 0
        self._failures = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="pgsse-notifier", daemon=True)
        self._thread.start()

    # -- any thread ----------------------------------------------------------------------

    def send(self, events: Sequence[Committed]) -> None:
        """Notify ``events`` (committed) as soon as possible; never blocks on I/O."""
        if not events:
            return
        with self._lock:
            self._pending.extend(events)
            self._handed += len(events)
            self._lock.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until everything handed over so far is sent (or given up on)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._handed
            while self._done < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._lock.wait(left)
        return True

    def stop(self, timeout: float = EXIT_FLUSH_TIMEOUT) -> None:
        """Send what is pending (for at most ``timeout`` seconds), then end the thread."""
        self.flush(timeout)
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._thread.join(timeout)

    def stats(self) -> NotifierStats:
        with self._lock:
            return NotifierStats(
                self._notifications, self._transactions, self._failures, len(self._pending)
            )

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        last_sent = 0.0
        while True:
            with self._lock:
                if not self._pending and not self._stopping:
                    # Wait for work; with a connection open, only so long (then close it).
                    self._lock.wait(IDLE_CLOSE if self._connection is not None else None)
                if not self._pending and self._stopping:
                    break
            # Busy: let what commits within the window join this transaction.
            pause = last_sent + NOTIFY_INTERVAL - time.monotonic()
            if pause > 0 and not self._stopping:
                time.sleep(pause)
            with self._lock:
                batch = self._pending[:MAX_PER_TRANSACTION]
                del self._pending[:MAX_PER_TRANSACTION]
            if not batch:
                self._disconnect()  # idle
                continue
            last_sent = time.monotonic()
            sent = self._send_with_one_retry(batch)
            with self._lock:
                self._done += len(batch)
                if sent is None:
                    self._failures += 1
                else:
                    self._notifications += sent
                    self._transactions += 1
                self._lock.notify_all()
        self._disconnect()

    def _send_with_one_retry(self, batch: list[Committed]) -> int | None:
        # A kept connection may have been closed meanwhile (a restart, an idle timeout):
        # one more try on a fresh one. Past that the sweep delivers, and the next batch
        # tries again after a pause.
        for attempt in (1, 2):
            try:
                return self._send(batch)
            except Exception:
                self._disconnect()
                if attempt == 2:
                    logger.warning(
                        "could not notify %s committed events; the hubs' sweep delivers them",
                        len(batch),
                        exc_info=True,
                    )
                    time.sleep(RETRY_DELAY)
        return None

    def _send(self, batch: list[Committed]) -> int:
        if self._connection is None:
            self._connection = self._connect()
        conn = self._connection
        unknown = [event.id for event in batch if event.seq is None]
        found: dict[int, tuple[int, int, bool]] = {}
        if unknown:
            rows = conn.execute(log.COMMITTED_SQL, (unknown,)).fetchall()
            found = {row[0]: (row[1], row[2], row[3]) for row in rows}
        notifications = []
        for event in batch:
            if event.seq is not None:
                seq, stamp, tail = event.seq, event.stamp, event.tail
            elif event.id in found:
                seq, stamp, redacted = found[event.id]
                # Erased since its commit: the hubs read what is left of it from the log.
                tail = f"\t{event.channel}" if redacted else event.tail
            else:
                continue  # gone already (its channel purged)
            head = f"{seq}@{stamp}" if stamp is not None else str(seq)
            notifications.append((event.channel, seq, event.pg_channel, head + tail))
        if not notifications:
            return 0
        # In seq order within each channel (commits may be handed over out of order): a
        # hub then delivers them as they come, with no read of the log for what would look
        # like a gap. Across channels the order stays that of the commits.
        by_channel: dict[str, list[tuple[str, int, str, str]]] = {}
        for notification in notifications:
            by_channel.setdefault(notification[0], []).append(notification)
        in_order = {
            name: iter(sorted(group, key=lambda n: n[1])) for name, group in by_channel.items()
        }
        ordered = [next(in_order[notification[0]]) for notification in notifications]
        names = [n[2] for n in ordered]
        payloads = [n[3] for n in ordered]
        conn.execute(log.NOTIFY_SQL, (names, payloads))
        return len(notifications)

    def _disconnect(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                logger.debug("closing the notifier's connection failed", exc_info=True)


# One notifier per process: it is created on the first commit that has something to
# notify, and a forked child (which inherits no thread) creates its own.
_notifier: Notifier | None = None
_notifier_pid = 0
_create_lock = threading.Lock()


def get_notifier() -> Notifier:
    """This process's notifier, started on first use, on ``PGSSE["DATABASE"]``."""
    global _notifier, _notifier_pid
    notifier = _notifier
    if notifier is not None and _notifier_pid == os.getpid():
        return notifier
    with _create_lock:
        if _notifier is None or _notifier_pid != os.getpid():
            _notifier = Notifier(_connector_from_django())
            _notifier_pid = os.getpid()
        return _notifier


def stop_notifier(timeout: float = EXIT_FLUSH_TIMEOUT) -> None:
    """Send what is pending and stop this process's notifier (a new one starts on the
    next commit). Called at exit; tests call it to start from a clean state."""
    global _notifier
    with _create_lock:
        notifier, _notifier = _notifier, None
    if notifier is not None and _notifier_pid == os.getpid():
        notifier.stop(timeout)


def _connector_from_django() -> Callable[[], Any]:
    """Opens the notifier's connection, to ``PGSSE["DATABASE"]`` as Django reaches it."""
    import psycopg
    from django.db import connections

    from pgsse.conf import get_settings
    from pgsse.connection import TCP_KEEPALIVE, connection_kwargs, identify

    settings_dict = connections[get_settings().DATABASE].settings_dict
    # Keepalive: a peer that vanished fails the socket in seconds, not in a quarter of an
    # hour of retransmissions (explicit settings win).
    options = {**TCP_KEEPALIVE, **connection_kwargs(settings_dict), **identify("notifier")}

    def connect() -> Any:
        conn = psycopg.connect(**options, autocommit=True)
        # A notifying transaction writes nothing durable (notifications do not survive a
        # crash anyway; the log does): its commit need not wait for the disk.
        conn.execute("SET synchronous_commit = off")
        return conn

    return connect


atexit.register(stop_notifier)
