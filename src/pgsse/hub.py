"""The hub: one per process (per event loop), fanning the log out to every open stream.

For every channel some stream follows, the hub keeps a :class:`Feed`: the channel sets
following it and ``last_seq``, the newest seq delivered to them. Delivery per channel is
contiguous: an event is handed on only when its seq is ``last_seq + 1``. Anything else, a
gap after a lost notification, a payload sent by reference, a reconnect of the listener, is
closed by reading the log ("catching up"). NOTIFY is the hint, the log is the truth: a
periodic sweep compares ``last_seq`` with the log's heads, so even a notification that
never came is delivered within ``SWEEP_INTERVAL``.

A new stream registers only once its channels are LISTENed and ``last_seq`` is known, and
it registers with no ``await`` between reading ``last_seq`` and joining the feed: the
stream replays the log up to that seq and everything after it reaches it live. Every
stream of a channel set is therefore at the same position, and shares its frames.

Requests to close streams (:func:`pgsse.close_streams`) are events of the reserved channel
``pgsse:control``, followed by every hub for as long as it runs: they reach every process
on every host, in commit order, and a listener outage delays them, never loses them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import random
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from django.db import connections

from pgsse import log
from pgsse.admission import Admission
from pgsse.channel_set import ChannelSet
from pgsse.closing import CLOSE_EVENT, CONTROL_CHANNEL, CloseRequest
from pgsse.conf import PgsseSettings, get_settings, require_installed
from pgsse.connection import TCP_KEEPALIVE, connection_kwargs, identify
from pgsse.feed import Feed
from pgsse.forget import FORGET_EVENT, forgotten_channel
from pgsse.listener import Listener
from pgsse.log import ChannelHead, LoggedEvent
from pgsse.log_reader import LogReader
from pgsse.open_rate import OpenRate
from pgsse.position import InvalidPosition
from pgsse.retention import rule_for
from pgsse.shutdown import install_shutdown_handlers
from pgsse.sse import encode_retry
from pgsse.stats import Counters, HubStats
from pgsse.subscription import EndReason, Subscription

__all__ = ["Hub", "HubStats", "SubscribeTimeout", "close_hub", "current_hub", "get_hub"]

logger = logging.getLogger("pgsse.hub")

#: Close requests remembered for streams whose authorization ran before a request arrived,
#: and how many of the latest a starting hub reads (for streams authorized meanwhile).
_RECENT_CLOSES = 1000
_REMEMBERED_AT_START = 100
#: Streams opened between two freezes of the garbage collector's older objects.
_FREEZE_EVERY = 500


class SubscribeTimeout(Exception):
    """The listener could not LISTEN in time (the database is unreachable), or the hub is
    shutting down."""


class LogSource(Protocol):
    """What the hub reads from the event log (a :class:`LogReader`, or a fake in tests)."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def events_after(self, channel: str, after: int, upto: int) -> list[LoggedEvent]: ...
    async def heads(self, channels: Sequence[str]) -> dict[str, ChannelHead]: ...
    def forget(self, channel: str) -> None: ...


class ListenerLike(Protocol):
    """What the hub asks of its listener (a :class:`Listener`, or a fake in tests)."""

    listening: frozenset[str]
    backend_pid: int | None
    connections_made: int

    def start(self) -> None: ...
    async def close(self) -> None: ...
    def want_more(self, pg_channel: str) -> None: ...
    def want_less(self, pg_channel: str) -> None: ...


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
        reader: LogSource | None = None,
        make_listener: MakeListener,
        counters: Counters | None = None,
    ) -> None:
        self.settings = settings
        self.counters = counters or Counters()
        self.reader: LogSource = reader  # type: ignore[assignment]  # set by from_django
        self.admission = Admission(settings, self.counters)
        self.opens = OpenRate(settings, self.counters)
        #: Admission of new streams: at most SETUP_CONCURRENCY run their hooks at once (in
        #: threads: request phases are sync code).
        self.setup_slots = threading.BoundedSemaphore(settings.SETUP_CONCURRENCY)
        #: The frame a stream sends before it ends: the client's reconnect delay.
        self.retry_frame = encode_retry(settings.RETRY_MS)
        self._feeds: dict[str, Feed] = {}
        self._channel_sets: dict[tuple[str, ...], ChannelSet] = {}
        self._subscriptions: set[Subscription] = set()
        self._listener = make_listener(self._on_notify, self._on_listening, self._on_lost)
        self._control = Feed(CONTROL_CHANNEL)
        self._recent_closes: deque[tuple[int, CloseRequest]] = deque(maxlen=_RECENT_CLOSES)
        self._seq_waiters: dict[str, list[tuple[int, asyncio.Future[None]]]] = {}
        self._waking: set[Feed] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started: asyncio.Task[None] | None = None
        self._closers: list[Callable[[], None]] = []
        #: The loop's time as of the clock's last tick (at most a second old): what streams
        #: stamp their writes with, cheaper than asking the loop once per event.
        self.now = 0.0
        self._frozen_at = 0
        self._closed = False
        self._disconnected = False
        #: Loop time at which the listener was lost, until it LISTENs again.
        self._lost_at: float | None = None

    @classmethod
    def from_django(cls) -> Hub:
        require_installed()
        settings = get_settings()
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
        return cls(settings, reader=reader, make_listener=make_listener, counters=counters)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the listener, the sweep and the clock; idempotent. Needs a running loop."""
        if self._started is None:
            self._started = self._spawn(self._start())

    async def _start(self) -> None:
        self.now = asyncio.get_running_loop().time()
        if self.settings.HANDLE_SIGNALS:
            install_shutdown_handlers(self)
        self._spawn(self._release_when_the_loop_ends())
        self._feeds[CONTROL_CHANNEL] = self._control
        self._control.refs = 1  # followed for as long as the hub runs
        self._listener.want_more(self._control.pg_name)
        self._listener.start()
        await self.reader.open()
        self._spawn(self._sweep_forever())
        self._spawn(self._tick_forever())
        if self.settings.PRUNE_INTERVAL:
            from pgsse.retention import prune_periodically

            self._spawn(prune_periodically(self.settings.PRUNE_INTERVAL, self.counters))

    def end_streams(self) -> None:
        """Refuse new streams and end every open one with a ``retry:`` hint.

        Called when the server is told to stop, so that open streams do not hold the
        worker past its graceful-shutdown timeout; clients reconnect to another worker.
        """
        self._closed = True
        for subscription in self._subscriptions:
            subscription.end(EndReason.SHUTDOWN)

    async def close(self) -> None:
        """End every stream (they send ``retry:``), stop every task, close every connection."""
        self.end_streams()
        _forget(self)
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._disconnect()

    def add_closer(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` when the hub closes (what serves its streams goes with it)."""
        self._closers.append(closer)

    async def _disconnect(self) -> None:
        if not self._disconnected:
            self._disconnected = True
            for closer in self._closers:
                closer()
            await self._listener.close()
            await self.reader.close()

    async def _release_when_the_loop_ends(self) -> None:
        # asyncio.run() cancels every task left when its coroutine returns: a hub nobody
        # closed then still gives its connections back.
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            _forget(self)
            self._closed = True
            await self._disconnect()

    def stats(self) -> HubStats:
        snapshot = self.counters.snapshot(
            now=asyncio.get_running_loop().time(),
            channels=len(self._feeds) - (CONTROL_CHANNEL in self._feeds),
            subscriptions=len(self._subscriptions),
            listener_connected=self._listener.backend_pid is not None,
            listener_connections=self._listener.connections_made,
        )
        failed_notifications: int = getattr(self._listener, "failures", 0)
        return replace(snapshot, failures=snapshot.failures + failed_notifications)

    @property
    def shutting_down(self) -> bool:
        """The process is stopping: new streams are refused (readiness probes say so)."""
        return self._closed

    @property
    def listener_pid(self) -> int | None:
        """Backend pid of the listener connection (for operators and fault tests)."""
        return self._listener.backend_pid

    # -- streams -----------------------------------------------------------------------

    def close_position(self) -> int:
        """How far close requests have been applied; a stream authorized after this point
        is still closed by any matching request that follows it (see :meth:`subscribe`)."""
        return self._control.last_seq

    def track(self, channels: tuple[str, ...], client: str = "") -> Subscription:
        """A subscription for a stream starting now in the running task, watched by the
        clock from its first write; :meth:`subscribe` joins it to its channels, and
        :meth:`unsubscribe` lets go of it."""
        age = self.settings.MAX_STREAM_AGE
        now = asyncio.get_running_loop().time()
        deadline = now + age * random.uniform(0.75, 1.0) if age is not None else math.inf
        subscription = Subscription(channels, client, self.settings.MAX_BUFFERED_BYTES, deadline)
        subscription.last_write = now
        self.now = now
        self._subscriptions.add(subscription)
        if self._closed:
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

        ``reauthorize``: the stream can re-check its authorization (every
        ``REAUTHORIZE_INTERVAL``, if set).
        ``at_least``: the client's position. If it is ahead of this hub (the client comes
        from a process that got a notification first), the subscription waits until this
        hub has caught up, so that the stream is at its channel set's position once live.
        A close request after ``close_position`` matching the stream ends it at once.
        Raises :class:`SubscribeTimeout`, and :class:`InvalidPosition` for a position
        ahead of the log itself.
        """
        if self._closed or subscription.end_reason is not None:
            raise SubscribeTimeout("the hub is shut down, or the stream ended")
        self.start()
        channels = subscription.channels
        feeds = tuple(self._retain(name) for name in channels)
        try:
            async with asyncio.timeout(self.settings.SUBSCRIBE_TIMEOUT):
                # A feed may become unready again (the listener dropped) while we wait for
                # another one: register only when all of them are ready at once.
                while True:
                    waiting = [feed for feed in (*feeds, self._control) if not feed.ready.is_set()]
                    if waiting:
                        await waiting[0].ready.wait()
                        continue
                    behind = {
                        feed.name: at_least[feed.name]
                        for feed in feeds
                        if at_least and at_least[feed.name] > feed.last_seq
                    }
                    if not behind:
                        break
                    await self._wait_for_seqs(behind)
            if self._closed or subscription.end_reason is not None:
                raise SubscribeTimeout("the hub is shut down, or the stream ended")
        except BaseException as exc:
            self._release(channels)
            if isinstance(exc, TimeoutError):
                raise SubscribeTimeout("the listener is not LISTENing") from exc
            raise
        # No await from here on: reading the feeds' seqs and joining them is atomic.
        now = asyncio.get_running_loop().time()
        self.now = now
        recheck = self.settings.REAUTHORIZE_INTERVAL
        if reauthorize and recheck is not None:
            # The first re-check anywhere in the interval: streams opened together (after a
            # deploy) do not all re-check together.
            subscription.recheck_at = now + recheck * random.uniform(0.1, 1.0)
        channel_set = self._channel_sets.get(channels)
        if channel_set is None:
            channel_set = self._channel_sets[channels] = ChannelSet(channels, feeds)
            for feed in feeds:
                feed.channel_sets.append(channel_set)
        channel_set.subscribers.add(subscription)
        subscription.joined = True
        self.counters.streams_opened += 1
        if self.settings.GC_FREEZE:
            # Here rather than on the clock: a worker taking back thousands of clients opens
            # more than 2,000 streams a second, and a full pass over one second's worth of
            # unfrozen streams took 60-85 ms.
            self._freeze_new_streams()
        if close_position is not None and any(
            seq > close_position and request.matches(subscription)
            for seq, request in self._recent_closes
        ):
            subscription.end(EndReason.CLOSED_ON_PURPOSE)
        return channel_set.position()

    def unsubscribe(self, subscription: Subscription) -> None:
        """Let go of ``subscription`` (leave its channels if it joined them); idempotent."""
        if subscription.finished:
            return
        subscription.finished = True
        self._subscriptions.discard(subscription)
        reason = subscription.end_reason or EndReason.CLIENT_LEFT
        self.counters.streams_closed[reason] += 1
        if not subscription.joined:
            return
        channel_set = self._channel_sets[subscription.channels]
        channel_set.subscribers.discard(subscription)
        if not channel_set.subscribers:
            del self._channel_sets[subscription.channels]
            for feed in channel_set.feeds:
                feed.channel_sets.remove(channel_set)
        self._release(subscription.channels)

    async def _wait_for_seqs(self, seqs: dict[str, int]) -> None:
        """Return once every channel in ``seqs`` was delivered up to its seq (the channels
        are followed); raise :class:`InvalidPosition` if the log itself is behind."""
        heads = await self.reader.heads(list(seqs))
        if any(seq > heads[name].last_seq for name, seq in seqs.items()):
            raise InvalidPosition("future", "position is ahead of the event log")
        loop = asyncio.get_running_loop()
        waits = []
        for name, seq in seqs.items():
            feed = self._feeds[name]
            if feed.last_seq < seq:
                future: asyncio.Future[None] = loop.create_future()
                self._seq_waiters.setdefault(name, []).append((seq, future))
                waits.append(future)
                feed.target = max(feed.target, seq)
                self._catch_up(feed)
        if waits:
            await asyncio.gather(*waits)

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
                for _, future in self._seq_waiters.pop(name, ()):
                    future.cancel()

    # -- notifications and delivery -------------------------------------------------

    def _on_notify(self, pg_channel: str, payload: str) -> None:
        counters = self.counters
        counters.notifications += 1
        counters.last_notification_at = asyncio.get_running_loop().time()
        try:
            channel, seq, inline, created_at = log.parse_payload(payload)
        except ValueError:
            counters.foreign_notifications += 1
            logger.warning(
                "ignored a notification pgsse did not send on %s: %.80r", pg_channel, payload
            )
            return
        feed = self._feeds.get(channel)
        if feed is None or feed.pg_name != pg_channel:
            return  # a channel we just left, or a payload naming another channel
        if seq == log.UNKNOWN_SEQ:
            self._wake(feed)  # new events of unknown seqs: the head tells
            return
        if seq <= feed.last_seq:
            return  # already delivered (by a catch-up)
        if seq == feed.last_seq + 1 and inline is not None and not feed.catching_up:
            self._deliver(feed, [LoggedEvent(channel, seq, inline[0], inline[1], created_at)])
            return
        feed.target = max(feed.target, seq)
        if feed.last_seq >= 0:
            self._catch_up(feed)

    def _wake(self, feed: Feed) -> None:
        """Read ``feed``'s head soon, with those of every other feed woken meanwhile."""
        if not self._waking:
            self._spawn(self._refresh_woken())
        self._waking.add(feed)

    async def _refresh_woken(self) -> None:
        await asyncio.sleep(0)  # the rest of a burst of wake-ups joins this read
        feeds, self._waking = list(self._waking), set()
        await self._refresh(feeds)

    def _deliver(self, feed: Feed, events: Sequence[LoggedEvent]) -> None:
        if feed is self._control:
            self._apply_control(events)
        else:
            self.counters.delivered += feed.deliver(events)
            self.counters.delivery_lag.observe(events)
        if self._seq_waiters:
            waiters = self._seq_waiters.get(feed.name)
            if waiters:
                still = [(seq, f) for seq, f in waiters if seq > feed.last_seq and not f.done()]
                for seq, future in waiters:
                    if seq <= feed.last_seq and not future.done():
                        future.set_result(None)
                self._seq_waiters[feed.name] = still

    def _remember_closes(self, events: Sequence[LoggedEvent]) -> list[CloseRequest | None]:
        requests: list[CloseRequest | None] = []
        for event in events:
            if event.type != CLOSE_EVENT:
                requests.append(None)
                continue
            try:
                request = CloseRequest.from_json(event.data)
            except (ValueError, TypeError, KeyError):
                self.counters.foreign_notifications += 1
                logger.warning("ignored a malformed close request: %.80r", event.data)
                requests.append(None)
                continue
            self._recent_closes.append((event.seq, request))
            requests.append(request)
        return requests

    def _apply_control(self, events: Sequence[LoggedEvent]) -> None:
        """Apply close requests and forget notices, in log order."""
        for event, request in zip(events, self._remember_closes(events), strict=True):
            self._control.last_seq = event.seq
            if event.type == FORGET_EVENT:
                self._forget(event)
            if request is None:
                continue
            closed = 0
            for subscription in self._subscriptions:
                if subscription.end_reason is None and request.matches(subscription):
                    subscription.end(EndReason.CLOSED_ON_PURPOSE)
                    closed += 1
            if closed:
                logger.info(
                    "closed %s streams on request",
                    closed,
                    extra={"client": request.client, "channel": request.channel},
                )

    def _forget(self, event: LoggedEvent) -> None:
        # A channel's history changed (redacted, purged): reads of it kept for other
        # streams would replay what it no longer says.
        try:
            channel = forgotten_channel(event.data)
        except (ValueError, TypeError, KeyError):
            self.counters.foreign_notifications += 1
            logger.warning("ignored a malformed forget notice: %.80r", event.data)
            return
        self.reader.forget(channel)

    def _on_listening(self, pg_channels: set[str]) -> None:
        feeds = [feed for feed in self._feeds.values() if feed.pg_name in pg_channels]
        lost_at, self._lost_at = self._lost_at, None
        away = None if lost_at is None else asyncio.get_running_loop().time() - lost_at
        if feeds:
            self._spawn(self._refresh(feeds, reconnected_after=away))

    def _on_lost(self) -> None:
        # Notifications cannot arrive until the listener LISTENs again: new streams wait
        # (and get ``retry:`` if it takes too long); open streams stay, and are caught up
        # from the log once the listener is back.
        for feed in self._feeds.values():
            feed.ready.clear()
        self._lost_at = asyncio.get_running_loop().time()

    async def _refresh(self, feeds: list[Feed], reconnected_after: float | None = None) -> None:
        """Read the heads of ``feeds``: make LISTENed feeds ready, catch up missed events.

        ``reconnected_after``: the listener is back after this many seconds away; the gap
        it left is logged (one line per reconnect)."""
        generation = self._listener.connections_made
        try:
            heads = await self.reader.heads([feed.name for feed in feeds])
        except Exception:
            self.counters.failures += 1
            logger.warning("could not read channel heads; the sweep retries", exc_info=True)
            return
        recent: list[LoggedEvent] = []
        if self._control in feeds and self._control.last_seq < 0:
            # Streams authorized before the hub knew where close requests stood are
            # matched against the latest requests (see subscribe()).
            head = heads[CONTROL_CHANNEL].last_seq
            try:
                recent = await self.reader.events_after(
                    CONTROL_CHANNEL, max(0, head - _REMEMBERED_AT_START), head
                )
            except Exception:
                self.counters.failures += 1
                logger.warning("could not read recent close requests", exc_info=True)
                return
        listening = self._listener.listening
        if reconnected_after is not None:
            _log_reconnect(feeds, heads, reconnected_after, self._listener.backend_pid)
        for feed in feeds:
            if self._feeds.get(feed.name) is not feed:
                continue
            head = heads[feed.name].last_seq
            # Only a LISTEN that is still in place (on the same connection as when the
            # heads were read) makes a feed ready: see Feed.
            lost = self._listener.connections_made != generation or (feed.pg_name not in listening)
            if feed.last_seq < 0:
                if lost:
                    continue
                if feed is self._control:
                    self._remember_closes(recent)
                feed.last_seq = head
            feed.target = max(feed.target, head)
            if feed.target > feed.last_seq:
                self._catch_up(feed)
            if not lost:
                feed.ready.set()

    def _catch_up(self, feed: Feed) -> None:
        if feed.catching_up or feed.last_seq < 0:
            return
        if feed.retry_at and asyncio.get_running_loop().time() < feed.retry_at:
            return  # backing off after a failure; the sweep comes back
        feed.catching_up = True
        self.counters.catch_ups += 1
        self._spawn(self._catch_up_from_log(feed))

    async def _catch_up_from_log(self, feed: Feed) -> None:
        try:
            while feed.last_seq < feed.target and self._feeds.get(feed.name) is feed:
                events = await self.reader.events_after(feed.name, feed.last_seq, feed.target)
                contiguous = log.contiguous_prefix(events, feed.last_seq)
                if contiguous:
                    self._deliver(feed, contiguous)
                    continue
                # The log does not continue where this feed stopped: the target came from
                # a notification pgsse did not send, or events are gone (pruned while the
                # listener was away, or deleted by hand). The head tells which.
                head = (await self.reader.heads([feed.name]))[feed.name]
                feed.target = min(feed.target, head.last_seq)
                if feed.last_seq >= feed.target:
                    break
                if head.pruned_seq > feed.last_seq:
                    self._lose(feed, min(head.pruned_seq, feed.target), pruned=True)
                    continue
                # Read again: rows that committed between the first read and the head read
                # are visible now. Whatever is still missing up to the head is gone.
                events = await self.reader.events_after(feed.name, feed.last_seq, feed.target)
                if log.contiguous_prefix(events, feed.last_seq):
                    continue
                # A hole pruning does not explain: skip to what the log still holds.
                self._lose(feed, events[0].seq - 1 if events else feed.target, pruned=False)
            feed.failures = 0
            feed.retry_at = 0.0
        except Exception:
            self.counters.failures += 1
            feed.failures += 1
            delay = min(self.settings.SWEEP_INTERVAL, 0.1 * 2**feed.failures)
            feed.retry_at = asyncio.get_running_loop().time() + delay
            logger.warning(
                "catch-up of %s failed; retried in %.1f s or by the sweep",
                feed.name,
                delay,
                exc_info=True,
            )
        finally:
            feed.catching_up = False

    def _lose(self, feed: Feed, resume_at: int, *, pruned: bool) -> None:
        """Events after ``feed.last_seq`` up to ``resume_at`` are gone: end the feed's streams
        (their resume from the log will get a ``reset``) and go on after the gap."""
        if not pruned:
            self.counters.holes += resume_at - feed.last_seq
        if feed is self._control or rule_for(feed.name).lossy:
            feed.last_seq = resume_at  # hints only: skip what is gone
            return
        logger.error(
            "channel %s: events %s to %s are gone from the log (%s); closing its streams",
            feed.name,
            feed.last_seq + 1,
            resume_at,
            "pruned" if pruned else "deleted outside pgsse_prune",
        )
        for channel_set in feed.channel_sets:
            for subscription in channel_set.subscribers:
                subscription.end(EndReason.EVENTS_LOST)
        feed.last_seq = resume_at

    # -- the periodic work -------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.SWEEP_INTERVAL)
            listening = self._listener.listening
            feeds = [feed for feed in self._feeds.values() if feed.pg_name in listening]
            if feeds:
                await self._refresh(feeds)

    async def _tick_forever(self) -> None:
        """Visit every stream about once a second: heartbeats, timeouts, age, aborts."""
        settings = self.settings
        period = min(1.0, settings.HEARTBEAT_INTERVAL / 2, settings.WRITE_TIMEOUT / 2)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            try:
                self._tick(loop.time())
            except Exception:
                self.counters.failures += 1
                logger.exception("the hub's clock failed; it goes on")

    def _tick(self, now: float) -> None:
        self.now = now
        heartbeat = self.settings.HEARTBEAT_INTERVAL
        write_timeout = self.settings.WRITE_TIMEOUT
        recheck = self.settings.REAUTHORIZE_INTERVAL
        for subscription in self._subscriptions:
            if subscription.end_reason is not None:
                # Ended but still writing: the client does not read, no retry: can get
                # through. (One merely waiting for the CPU gets there by itself.)
                if subscription.writing_since and now >= subscription.abort_at:
                    subscription.abort()
            elif subscription.writing_since:
                if now - subscription.writing_since >= write_timeout:
                    # Stuck in a write: no retry: can get through, cancel right away.
                    subscription.end(EndReason.WRITE_TIMEOUT, abort_after=0)
                    subscription.abort()
            elif now >= subscription.deadline:
                subscription.end(EndReason.MAX_AGE)
            elif now >= subscription.recheck_at and recheck is not None:
                subscription.recheck_at = now + recheck * random.uniform(0.9, 1.1)
                subscription.ask_recheck()
            elif now - subscription.last_write >= heartbeat:
                subscription.beat()

    def _freeze_new_streams(self) -> None:
        """Move what the last streams allocated out of the collector's full passes.

        A full pass walks every tracked object, about 60 per open stream (the server's
        connection, the tasks, the stream), which took half a second with 10,000 streams
        open. Frozen objects are still freed by reference counting when their stream
        ends (a stream's life leaves no reference cycle behind, tested), so freezing
        costs nothing but garbage in cycles that had already reached the oldest
        generation, collected first by ``gc.collect(1)`` as far as it is young.
        """
        opened = self.counters.streams_opened
        if opened - self._frozen_at >= _FREEZE_EVERY:
            self._frozen_at = opened
            gc.collect(1)
            gc.freeze()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _log_reconnect(
    feeds: list[Feed], heads: dict[str, ChannelHead], away: float, backend_pid: int | None
) -> None:
    behind = [(feed, heads[feed.name].last_seq - feed.last_seq) for feed in feeds]
    gaps = {feed.name: gap for feed, gap in behind if feed.last_seq >= 0 and gap > 0}
    logger.info(
        "listener reconnected after %.2f s; filling %s events on %s of %s channels from the log",
        away,
        sum(gaps.values()),
        len(gaps),
        len(feeds),
        extra={
            "outage": round(away, 3),
            "gap_events": sum(gaps.values()),
            "gap_channels": len(gaps),
            "channels": len(feeds),
            "backend_pid": backend_pid,
        },
    )


# One hub per event loop. A server process runs one loop, so this is one hub per process;
# tests that start servers on fresh loops get fresh hubs. Whoever starts a server closes
# its hub (close_hub(), which wrap()'s lifespan shutdown and the test fixtures call); a
# hub whose loop ends without that still releases its connections (see Hub).
_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}
_hub_factory: Callable[[], Hub] = Hub.from_django


def _forget(hub: Hub) -> None:
    for loop, known in list(_hubs.items()):
        if known is hub:
            del _hubs[loop]


def get_hub() -> Hub:
    """The hub of the running event loop, created and started on first use.

    Raises ``ImproperlyConfigured`` when pgsse is not in ``INSTALLED_APPS``.
    """
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
    hub = _hubs.get(asyncio.get_running_loop())
    if hub is not None:
        await hub.close()
