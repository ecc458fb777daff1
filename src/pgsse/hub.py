"""The hub: one per process (per event loop), fanning the log out to every open stream.

It is a composition, each part one job:

- the listener (:mod:`pgsse.listener`): one connection LISTENing to what streams follow;
- the feed table (:mod:`pgsse.feed_table`): a feed per channel, retained while streams
  follow it; streams join their channel set atomically, once their feeds are ready;
- catch-up (:mod:`pgsse.catch_up`): notifications delivered in seq order, the log read
  for whatever they miss (gaps, large events, reconnects, the periodic sweep);
- close requests (:mod:`pgsse.close_requests`): ``pgsse:control`` applied in log order;
- the clock (:mod:`pgsse.clock`): heartbeats, write timeouts, age, re-checks;
- the log reader (:mod:`pgsse.log_reader`), admission and open rates, all owned here.

**Lifetime.** A hub is opened and closed by its owner, ``async with hub:``, like a
connection pool: ``pgsse.asgi.wrap()`` opens one at lifespan startup and closes it at
lifespan shutdown, and tests open their own. Its background tasks are supervised
(:mod:`pgsse.supervision`) and cancelled when it closes; closing ends every stream (with
``retry:``), those waiting to join included, and closes every connection. A server that
sends no lifespan events (daphne, or an application served without the wrapper) has no
such owner: the first request that needs a hub opens one owned by the event loop itself
(:func:`get_hub`), closed when the loop ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import weakref
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any

from django.db import connections

from pgsse import jitter
from pgsse.admission import Admission
from pgsse.catch_up import CatchUp, LogSource
from pgsse.clock import Clock
from pgsse.close_requests import CloseRequests
from pgsse.closing import CONTROL_CHANNEL
from pgsse.conf import PgsseSettings, get_settings, require_installed
from pgsse.connection import TCP_KEEPALIVE, connection_kwargs, identify
from pgsse.feed import Feed
from pgsse.feed_table import FeedTable, ListenerLike, StreamEnded
from pgsse.freezing import Freezer
from pgsse.listener import Listener
from pgsse.log_reader import LogReader
from pgsse.open_rate import OpenRate
from pgsse.position import InvalidPosition
from pgsse.shutdown import install_shutdown_handlers
from pgsse.sse import encode_retry
from pgsse.stats import Counters, HubStats
from pgsse.subscription import EndReason, Subscription
from pgsse.supervision import Supervisor

__all__ = ["Hub", "HubStats", "SubscribeTimeout", "current_hub", "get_hub"]


class SubscribeTimeout(Exception):
    """The listener could not LISTEN in time (the database is unreachable), or the hub is
    shutting down, or the stream ended while it waited."""


#: Builds the listener, given the hub's callbacks: on_notify, on_listening, on_lost.
MakeListener = Callable[
    [Callable[[str, str], None], Callable[[set[str]], None], Callable[[], None]], ListenerLike
]


class Hub:
    """One listener connection, a small pool for reading the log, the feeds and the streams."""

    def __init__(
        self,
        settings: PgsseSettings,
        *,
        reader: LogSource,
        make_listener: MakeListener,
        counters: Counters | None = None,
        limits: Callable[[], PgsseSettings] | None = None,
    ) -> None:
        self.settings = settings
        self.counters = counters or Counters()
        self.reader = reader
        # The caps and rates of new streams are read at each open (``limits``: the
        # project's settings, so that ``override_settings`` applies to a running hub).
        limits = limits or (lambda: settings)
        self.admission = Admission(limits, self.counters)
        self.opens = OpenRate(limits, self.counters)
        #: Admission of new streams: at most SETUP_CONCURRENCY run their hooks at once (in
        #: threads: request phases are sync code).
        self.setup_slots = threading.BoundedSemaphore(settings.SETUP_CONCURRENCY)
        #: The frame a stream sends before it ends: the client's reconnect delay.
        self.retry_frame = encode_retry(settings.RETRY_MS)
        self._subscriptions: set[Subscription] = set()
        self._tasks = Supervisor(self.counters)
        self._listener = make_listener(self._on_notify, self._on_listening, self._on_lost)
        self._table = FeedTable(self._listener, self._refresh_soon)
        #: ``pgsse:control`` is followed for as long as the hub runs.
        self._control: Feed = self._table.retain(CONTROL_CHANNEL)
        self._closes = CloseRequests(self._control, self._subscriptions, reader, self.counters)
        self._catch_up = CatchUp(
            self._table,
            self._closes,
            reader,
            self._listener,
            settings,
            self.counters,
            self._tasks.spawn,
        )
        #: What streams stamp their writes with (see :class:`~pgsse.clock.Clock`).
        self.clock = Clock(settings, self._subscriptions)
        self._freezer = Freezer() if settings.GC_FREEZE else None
        self._closers: list[Callable[[], None]] = []
        self._opened = False
        self._ending = False
        self._closed = False
        self._drained: asyncio.Future[None] | None = None

    @classmethod
    def from_django(cls, conninfo: dict[str, Any] | None = None) -> Hub:
        """A hub on ``PGSSE["DATABASE"]``, with the project's settings (not open yet).

        ``conninfo``: psycopg's connection parameters, if not those of the ``DATABASES``
        entry (another route to the same database)."""
        require_installed()
        settings = get_settings()
        if conninfo is None:
            conninfo = connection_kwargs(connections[settings.DATABASE].settings_dict)
        counters = Counters()

        def make_listener(
            on_notify: Callable[[str, str], None],
            on_listening: Callable[[set[str]], None],
            on_lost: Callable[[], None],
        ) -> Listener:
            async def connect() -> Any:
                from psycopg import AsyncConnection

                # TCP keepalive lets the kernel notice a peer that vanished without a word,
                # even between health queries (libpq ignores it on Unix sockets); explicit
                # settings win.
                options = {**TCP_KEEPALIVE, **conninfo, **identify("listener")}
                return await AsyncConnection.connect(**options, autocommit=True)

            return Listener(connect, on_notify, on_listening, on_lost, settings)

        reader = LogReader({**conninfo, **identify("reader")}, settings, counters)
        return cls(
            settings,
            reader=reader,
            make_listener=make_listener,
            counters=counters,
            limits=get_settings,
        )

    # -- lifetime ----------------------------------------------------------------------

    async def __aenter__(self) -> Hub:
        await self.open()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect and start the hub's work on the running loop; once in its life."""
        if self._opened:
            raise RuntimeError("a hub is opened once; make a new one")
        _register(asyncio.get_running_loop(), self)
        self._opened = True
        try:
            self.clock.start()
            if self.settings.HANDLE_SIGNALS:
                install_shutdown_handlers(self)
            self._listener.start()
            await self.reader.open()
            self._tasks.keep_running("sweep", self._catch_up.sweep)
            self._tasks.keep_running("clock", lambda: self.clock.run(self.reader.expire))
            if self.settings.PRUNE_INTERVAL:
                from pgsse.retention import prune_periodically

                interval = self.settings.PRUNE_INTERVAL
                self._tasks.keep_running(
                    "pruning", lambda: prune_periodically(interval, self.counters)
                )
        except BaseException:
            await self.close()
            raise

    async def streams_ended(self, timeout: float) -> None:
        """Return once no stream holds the hub any more (each has written its last frame
        and let go), or after ``timeout`` seconds."""
        if not self._subscriptions:
            return
        self._drained = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._drained

    def end_streams(self) -> None:
        """Refuse new streams and end every open one with a ``retry:`` hint, those waiting
        to join included.

        Called when the server is told to stop, so that open streams do not hold the
        worker past its graceful-shutdown timeout; clients reconnect to another worker.
        """
        self._ending = True
        for subscription in self._subscriptions:
            subscription.end(EndReason.SHUTDOWN)

    async def close(self) -> None:
        """End every stream (they send ``retry:``), stop every task, close every connection."""
        if self._closed:
            return
        self.end_streams()
        self._closed = True
        await self._tasks.close()
        for closer in self._closers:
            closer()
        await self._listener.close()
        await self.reader.close()

    def add_closer(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` when the hub closes (what serves its streams goes with it)."""
        self._closers.append(closer)

    @property
    def shutting_down(self) -> bool:
        """The process is stopping: new streams are refused (readiness probes say so)."""
        return self._ending

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> HubStats:
        snapshot = self.counters.snapshot(
            now=asyncio.get_running_loop().time(),
            channels=len(self._table.feeds) - 1,  # not pgsse:control
            subscriptions=len(self._subscriptions),
            listener_connected=self._listener.backend_pid is not None,
            listener_connections=self._listener.connections_made,
        )
        failed_notifications: int = getattr(self._listener, "failures", 0)
        return replace(snapshot, failures=snapshot.failures + failed_notifications)

    @property
    def listener_pid(self) -> int | None:
        """Backend pid of the listener connection (for operators and fault tests)."""
        return self._listener.backend_pid

    # -- streams -----------------------------------------------------------------------

    def close_position(self) -> int | None:
        """How far close requests have been applied; a stream authorized after this point
        is still closed by any matching request that follows it (see :meth:`subscribe`).
        None until the hub knows: the caller then reads the position from the log."""
        return self._closes.position()

    def track(self, channels: tuple[str, ...], client: str = "") -> Subscription:
        """A subscription for a stream starting now in the running task, watched by the
        clock from its first write; :meth:`subscribe` joins it to its channels, and
        :meth:`unsubscribe` lets go of it."""
        age = self.settings.MAX_STREAM_AGE
        now = asyncio.get_running_loop().time()
        deadline = now + age * jitter.uniform(0.75, 1.0) if age is not None else math.inf
        subscription = Subscription(channels, client, self.settings.MAX_BUFFERED_BYTES, deadline)
        subscription.last_write = self.clock.now = now
        self._subscriptions.add(subscription)
        if self._ending:
            subscription.end(EndReason.SHUTDOWN)
        return subscription

    async def subscribe(
        self,
        subscription: Subscription,
        close_position: int | None = None,
        *,
        at_least: dict[str, int] | None = None,
        reauthorize: bool = False,
    ) -> dict[str, int]:
        """Join ``subscription`` (from :meth:`track`) to its channels; return the seq each
        channel is live from. Every event with a seq above it reaches the subscription;
        the caller replays the log up to it.

        ``at_least``: the client's position. If it is ahead of this hub (the client comes
        from a process that got a notification first), the subscription waits until this
        hub has caught up, so that the stream is at its channel set's position once live.
        A close request after ``close_position`` matching the stream ends it at once.
        ``reauthorize``: the stream re-checks its authorization every
        ``REAUTHORIZE_INTERVAL``, if set. Raises :class:`SubscribeTimeout`, and
        :class:`InvalidPosition` for a position ahead of the log itself.
        """
        channels = subscription.channels
        feeds = tuple(self._table.retain(name) for name in channels)
        try:
            async with asyncio.timeout(self.settings.SUBSCRIBE_TIMEOUT):
                await self._table.until_joinable(
                    subscription,
                    feeds,
                    at_least,
                    catch_up_to=self._catch_up.catch_up_to,
                    ending=lambda: self._ending,
                )
        except BaseException as exc:
            self._table.release(channels)
            if isinstance(exc, TimeoutError):
                raise SubscribeTimeout("the listener is not LISTENing") from exc
            if isinstance(exc, StreamEnded):
                raise SubscribeTimeout(str(exc)) from exc
            if isinstance(exc, Exception) and not isinstance(exc, InvalidPosition):
                raise SubscribeTimeout(f"the log could not be read: {exc}") from exc
            raise
        # No await from here on: reading the feeds' seqs and joining them is atomic.
        live_from = self._table.join(subscription, feeds)
        recheck = self.settings.REAUTHORIZE_INTERVAL
        if reauthorize and recheck is not None:
            # The first re-check anywhere in the interval: streams opened together (after a
            # deploy) do not all re-check together.
            subscription.recheck_at = self.clock.now + recheck * jitter.uniform(0.1, 1.0)
        self.counters.streams_opened += 1
        if self._freezer is not None:
            self._freezer.opened()
        if close_position is not None and self._closes.closed_since(close_position, subscription):
            subscription.end(EndReason.CLOSED_ON_PURPOSE)
        return live_from

    def unsubscribe(self, subscription: Subscription) -> None:
        """Let go of ``subscription`` (leave its channels if it joined them); idempotent."""
        if subscription.finished:
            return
        subscription.finished = True
        self._subscriptions.discard(subscription)
        drained = self._drained
        if drained is not None and not self._subscriptions and not drained.done():
            drained.set_result(None)
        reason = subscription.end_reason or EndReason.CLIENT_LEFT
        self.counters.streams_closed[reason] += 1
        if subscription.joined:
            self._table.leave(subscription)

    # -- the listener's callbacks ------------------------------------------------------

    def _on_notify(self, pg_channel: str, payload: str) -> None:
        self._catch_up.on_notify(pg_channel, payload)

    def _on_listening(self, pg_channels: set[str]) -> None:
        self._catch_up.on_listening(pg_channels)

    def _on_lost(self) -> None:
        self._catch_up.on_lost()

    def _refresh_soon(self, feeds: list[Feed]) -> None:
        self._catch_up.refresh_soon(feeds)


# The hub of each event loop, held weakly on both sides: an entry goes with its loop, or
# with its hub once its owner lets go of it. A server process runs one loop, so this is one
# hub per process. The owner keeps its hub, closed, for as long as it lives itself (the
# wrapper does), so that no late request opens another after the owner closed it.
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.ref[Hub]] = (
    weakref.WeakKeyDictionary()
)
#: The tasks that own the hubs opened by a request (see get_hub()), until their loop ends.
_loop_owners: set[asyncio.Task[None]] = set()


def _register(loop: asyncio.AbstractEventLoop, hub: Hub) -> None:
    known = _known(loop)
    if known is not None and known is not hub and not known.closed:
        raise RuntimeError("this event loop has an open pgsse hub already")
    _hubs[loop] = weakref.ref(hub)


def _known(loop: asyncio.AbstractEventLoop) -> Hub | None:
    held = _hubs.get(loop)
    return held() if held is not None else None


def current_hub() -> Hub | None:
    """The hub opened on the running loop (or shut down there), or None."""
    return _known(asyncio.get_running_loop())


def get_hub() -> Hub:
    """The running loop's hub; if nobody opened one, one owned by the loop itself.

    An owner opens the hub where it can (``pgsse.asgi.wrap()``'s lifespan startup, tests);
    daphne sends no lifespan events, and an application served without the wrapper has no
    lifespan at all: the first request that needs a hub then opens one, in a task of its
    own (not the request's: a request cancelled does not take it down), which closes it
    when the loop ends (``asyncio.run()`` cancels the tasks left).
    Raises ``ImproperlyConfigured`` when pgsse is not in ``INSTALLED_APPS``.
    """
    hub = current_hub()
    if hub is None:
        hub = Hub.from_django()
        loop = asyncio.get_running_loop()
        _register(loop, hub)
        owner = loop.create_task(_own(hub), name="pgsse-hub")
        _loop_owners.add(owner)
        owner.add_done_callback(_loop_owners.discard)
    return hub


async def _own(hub: Hub) -> None:
    async with hub:
        await asyncio.get_running_loop().create_future()  # until the loop ends
