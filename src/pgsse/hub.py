"""The hub: one per process (per event loop), fanning the log out to every open stream.

For every channel some stream follows, the hub keeps a :class:`Feed`: the subscribers and
``last_seq``, the newest seq delivered to them. Delivery per channel is contiguous: an
event is handed to subscribers only when its seq is ``last_seq + 1``. Anything else, a
gap after a lost notification, a payload sent by reference, a reconnect of the listener,
is closed by reading the log ("catching up"). NOTIFY is the hint, the log is the truth:
a periodic sweep compares ``last_seq`` with the log's heads so that even a notification
that never came is delivered within ``SWEEP_INTERVAL``.

A new stream registers only once its channels are LISTENed and ``last_seq`` is known, and
it registers with no ``await`` between reading ``last_seq`` and joining the feed: the
stream replays the log up to that seq and everything after it reaches it live.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from pgsse import log
from pgsse.conf import PgsseSettings, get_settings
from pgsse.connection import connection_kwargs
from pgsse.feed import Feed
from pgsse.listener import Listener
from pgsse.log import ChannelHead, LoggedEvent
from pgsse.retention import prune_periodically, rule_for
from pgsse.signals import install_shutdown_handlers
from pgsse.subscription import Subscription

__all__ = ["Hub", "HubStats", "SubscribeTimeout", "close_hub", "get_hub"]

logger = logging.getLogger("pgsse.hub")

_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms: data left unacknowledged this long fails the socket
}


class SubscribeTimeout(Exception):
    """The listener could not LISTEN in time (the database is unreachable)."""


@dataclass
class HubStats:
    """Counters of one hub, for tests, health checks and metrics."""

    channels: int
    subscriptions: int
    listener_connected: bool
    listener_connections: int
    notifications: int
    foreign_notifications: int
    catch_ups: int
    log_reads: int
    delivered: int


class Hub:
    """One listener connection, a small pool for reading the log, and the feeds."""

    def __init__(self, conninfo: dict[str, Any], settings: PgsseSettings) -> None:
        self.settings = settings
        self._conninfo = conninfo
        self._feeds: dict[str, Feed] = {}
        self._subscriptions: set[Subscription] = set()
        #: Open streams per logged-in user, for MAX_STREAMS_PER_USER.
        self.streams_by_client: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[Any]] = set()
        # Reads (replay, catch-up, heads) use at most two connections, never one per stream.
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            kwargs={**conninfo, "autocommit": True},
            min_size=1,
            max_size=2,
            open=False,
            check=AsyncConnectionPool.check_connection,
            timeout=settings.SUBSCRIBE_TIMEOUT,
            name="pgsse-reader",
        )
        self._listener = Listener(
            self._connect_listener, self._on_notify, self._on_listening, settings
        )
        #: Admission of new streams: at most SETUP_CONCURRENCY run their hooks at once.
        self.setup_slots = asyncio.Semaphore(settings.SETUP_CONCURRENCY)
        self._started: asyncio.Task[None] | None = None
        self._closed = False
        self._notifications = 0
        self._foreign = 0
        self._catch_ups = 0
        self._log_reads = 0
        self._delivered = 0

    @classmethod
    def from_django(cls) -> Hub:
        settings = get_settings()
        return cls(connection_kwargs(connections[settings.DATABASE].settings_dict), settings)

    async def _connect_listener(self) -> AsyncConnection[Any]:
        # TCP keepalive lets the kernel notice a peer that vanished without a word, even
        # between health queries (libpq ignores it on Unix sockets); explicit settings win.
        return await AsyncConnection.connect(**{**_KEEPALIVE, **self._conninfo}, autocommit=True)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the listener and the sweep; idempotent. Needs a running event loop."""
        if self._started is None:
            self._started = self._spawn(self._start())

    async def _start(self) -> None:
        if self.settings.HANDLE_SIGNALS:
            install_shutdown_handlers(self)
        self._listener.start()
        await self._pool.open()
        self._spawn(self._sweep_forever())
        if self.settings.PRUNE_INTERVAL:
            self._spawn(prune_periodically(self.settings.PRUNE_INTERVAL))

    def end_streams(self) -> None:
        """Refuse new streams and end every open one with a ``retry:`` hint.

        Called when the server is told to stop, so that open streams do not hold the
        worker past its graceful-shutdown timeout; clients reconnect to another worker.
        """
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.close()

    async def close(self) -> None:
        """End every subscription (streams send ``retry:`` and close), then disconnect."""
        self.end_streams()
        await self._listener.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._pool.close()

    def stats(self) -> HubStats:
        return HubStats(
            channels=len(self._feeds),
            subscriptions=len(self._subscriptions),
            listener_connected=self._listener.backend_pid is not None,
            listener_connections=self._listener.connections_made,
            notifications=self._notifications,
            foreign_notifications=self._foreign,
            catch_ups=self._catch_ups,
            log_reads=self._log_reads,
            delivered=self._delivered,
        )

    @property
    def listener_pid(self) -> int | None:
        """Backend pid of the listener connection (for operators and fault tests)."""
        return self._listener.backend_pid

    # -- subscriptions ---------------------------------------------------------------

    async def subscribe(self, channels: tuple[str, ...]) -> tuple[Subscription, dict[str, int]]:
        """Join ``channels``; return the subscription and the seq each channel is live from.

        Every event with a seq above the returned one reaches the subscription; the
        caller replays the log up to it. Raises :class:`SubscribeTimeout`.
        """
        if self._closed:
            raise SubscribeTimeout("the hub is shut down")
        self.start()
        subscription = Subscription(channels, self.settings.MAX_BUFFERED_EVENTS)
        feeds = [self._retain(name) for name in channels]
        try:
            async with asyncio.timeout(self.settings.SUBSCRIBE_TIMEOUT):
                for feed in feeds:
                    await feed.ready.wait()
            if self._closed:  # shut down while waiting: end_streams() did not see us
                raise SubscribeTimeout("the hub is shut down")
        except BaseException as exc:
            self._release(channels)
            if isinstance(exc, TimeoutError):
                raise SubscribeTimeout("the listener is not connected") from exc
            raise
        # No await from here on: the heads read below and the registration are atomic.
        for feed in feeds:
            feed.subscribers.add(subscription)
        self._subscriptions.add(subscription)
        return subscription, {feed.name: feed.last_seq for feed in feeds}

    def unsubscribe(self, subscription: Subscription) -> None:
        """Leave every channel of ``subscription``; idempotent."""
        if subscription not in self._subscriptions:
            return
        subscription.finished = True
        self._subscriptions.discard(subscription)
        for name in subscription.channels:
            self._feeds[name].subscribers.discard(subscription)
        self._release(subscription.channels)

    def reserve_stream(self, client: str) -> Callable[[], None]:
        """Count one more open stream for ``client``; return the (idempotent) release."""
        self.streams_by_client[client] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.streams_by_client[client] -= 1
                if not self.streams_by_client[client]:
                    del self.streams_by_client[client]

        return release

    def _retain(self, name: str) -> Feed:
        feed = self._feeds.get(name)
        if feed is None:
            feed = self._feeds[name] = Feed(name)
            self._listener.want_more(feed.pg_name)
            if feed.pg_name in self._listener.listening:
                # Still LISTENing from a stream that just left (its UNLISTEN not yet
                # sent): no LISTEN will announce this feed, so read its head now.
                self._spawn(self._refresh([feed]))
        feed.refs += 1
        return feed

    def _release(self, names: Iterable[str]) -> None:
        for name in names:
            feed = self._feeds[name]
            feed.refs -= 1
            if feed.refs == 0:
                del self._feeds[name]
                self._listener.want_less(feed.pg_name)

    # -- reading the log -------------------------------------------------------------

    async def read_events(self, channel: str, after: int, upto: int) -> list[LoggedEvent]:
        """Up to ``REPLAY_BATCH`` events of ``channel`` with ``after < seq <= upto``."""
        self._log_reads += 1
        async with self._pool.connection() as conn:
            return await log.read_events(conn, channel, after, upto, self.settings.REPLAY_BATCH)

    async def read_heads(self, channels: Sequence[str]) -> dict[str, ChannelHead]:
        """The log's head (newest and pruned seq) for each channel."""
        async with self._pool.connection() as conn:
            return await log.read_heads(conn, channels)

    # -- notifications and delivery -------------------------------------------------

    def _on_notify(self, pg_channel: str, payload: str) -> None:
        self._notifications += 1
        try:
            channel, seq, inline = log.parse_payload(payload)
        except ValueError:
            self._foreign += 1
            logger.warning(
                "ignored a notification pgsse did not send on %s: %.80r", pg_channel, payload
            )
            return
        feed = self._feeds.get(channel)
        if feed is None or feed.pg_name != pg_channel:
            return  # a channel we just left, or a payload naming another channel
        if seq <= feed.last_seq:
            return  # already delivered (by a catch-up)
        if seq == feed.last_seq + 1 and inline is not None and not feed.catching_up:
            self._deliver(feed, [LoggedEvent(channel, seq, inline[0], inline[1])])
            return
        feed.target = max(feed.target, seq)
        if feed.last_seq >= 0:
            self._catch_up(feed)

    def _deliver(self, feed: Feed, events: Sequence[LoggedEvent]) -> None:
        self._delivered += feed.deliver(events)

    def _on_listening(self, pg_channels: set[str]) -> None:
        feeds = [feed for feed in self._feeds.values() if feed.pg_name in pg_channels]
        if feeds:
            self._spawn(self._refresh(feeds))

    async def _refresh(self, feeds: list[Feed]) -> None:
        """Read the heads of ``feeds``: initialise new feeds, catch up on missed events."""
        try:
            heads = await self.read_heads([feed.name for feed in feeds])
        except Exception as exc:
            logger.warning("could not read channel heads: %s", exc)
            return
        for feed in feeds:
            head = heads[feed.name].last_seq
            if feed.last_seq < 0:
                feed.last_seq = head
                feed.ready.set()
            feed.target = max(feed.target, head)
            if feed.target > feed.last_seq:
                self._catch_up(feed)

    def _catch_up(self, feed: Feed) -> None:
        if not feed.catching_up:
            feed.catching_up = True
            self._catch_ups += 1
            self._spawn(self._catch_up_from_log(feed))

    async def _catch_up_from_log(self, feed: Feed) -> None:
        try:
            while feed.last_seq < feed.target and self._feeds.get(feed.name) is feed:
                events = await self.read_events(feed.name, feed.last_seq, feed.target)
                contiguous = log.contiguous_prefix(events, feed.last_seq)
                if contiguous:
                    self._deliver(feed, contiguous)
                    continue
                # The log does not continue where this feed stopped: the target came from
                # a notification pgsse did not send, or events are gone (pruned while the
                # listener was away, or deleted by hand). The head tells which.
                head = (await self.read_heads([feed.name]))[feed.name]
                feed.target = min(feed.target, head.last_seq)
                if feed.last_seq >= feed.target:
                    break
                resume_at = head.pruned_seq if head.pruned_seq > feed.last_seq else None
                if resume_at is None and events and events[0].seq > feed.last_seq + 1:
                    resume_at = events[0].seq - 1  # a hole pruning does not explain
                if resume_at is not None:
                    self._lose(feed, resume_at)
        except Exception as exc:
            logger.warning("catch-up of %s failed: %s; the sweep will retry", feed.name, exc)
        finally:
            feed.catching_up = False

    def _lose(self, feed: Feed, resume_at: int) -> None:
        """Events after ``feed.last_seq`` up to ``resume_at`` are gone: end the feed's streams
        (their resume from the log will get a ``reset``) and go on after the gap."""
        if rule_for(feed.name).lossy:
            feed.last_seq = resume_at  # hints only: skip what is gone
            return
        logger.error(
            "channel %s: events %s to %s are gone from the log; closing its streams",
            feed.name,
            feed.last_seq + 1,
            resume_at,
        )
        for subscription in list(feed.subscribers):
            subscription.close()
        feed.last_seq = resume_at

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.SWEEP_INTERVAL)
            if self._feeds:
                await self._refresh(list(self._feeds.values()))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


# One hub per event loop. A server process runs one loop, so this is one hub per process;
# tests that start servers on fresh loops get fresh hubs, and close_hub() drops one.
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()
_hub_factory: Callable[[], Hub] = Hub.from_django


def get_hub() -> Hub:
    """The hub of the running event loop, created and started on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = _hub_factory()
        hub.start()
    return hub


def current_hub() -> Hub | None:
    """The running loop's hub if one was started, without starting one."""
    return _hubs.get(asyncio.get_running_loop())


async def close_hub() -> None:
    """Close and forget the running loop's hub, if any."""
    hub = _hubs.pop(asyncio.get_running_loop(), None)
    if hub is not None:
        await hub.close()
