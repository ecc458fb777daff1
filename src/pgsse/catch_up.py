"""Delivery: notifications in, events out, and the log read whenever they disagree.

Delivery per channel is contiguous: an event is handed on only when its seq is
``last_seq + 1``. Anything else, a gap after a lost notification, a payload sent by
reference, a reconnect of the listener, is closed by reading the log ("catching up").
NOTIFY is the hint, the log is the truth: a periodic sweep compares every feed's
``last_seq`` with the log's heads, so even a notification that never came is delivered
within ``SWEEP_INTERVAL``.

Close requests come first. An event must not reach a stream that a close request
committed before it has ended (a member removed, then a message posted). Live, the
listener receives notifications in the order they were sent, so a channel event is handed
on at once only while every close request this hub knows of is applied (none is being
caught up, and the listener has not been away). Otherwise the event is caught up from the
log, and a catch-up delivers only once the control channel is applied up to a head read
after everything it delivers was committed: the control head read in the same query as
the channel's (a refresh, the sweep, a reconnect), or read afresh after the notification
that raised its target arrived (one read shared by the catch-ups of the moment).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from pgsse import log
from pgsse.close_requests import REMEMBERED_AT_START, CloseRequests
from pgsse.closing import CONTROL_CHANNEL
from pgsse.conf import PgsseSettings
from pgsse.feed import Feed
from pgsse.feed_table import FeedTable, ListenerLike
from pgsse.log import ChannelHead, LoggedEvent
from pgsse.position import InvalidPosition
from pgsse.retention import rule_for
from pgsse.stats import Counters
from pgsse.subscription import EndReason

__all__ = ["HEADS_PER_READ", "CatchUp", "LogSource"]

logger = logging.getLogger("pgsse.hub")

#: Channels whose heads one query reads; a refresh of more runs several at once.
HEADS_PER_READ = 1000


class LogSource(Protocol):
    """What the hub reads from the event log (a :class:`~pgsse.log_reader.LogReader`, or a
    fake in tests)."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def events_after(self, channel: str, after: int, upto: int) -> list[LoggedEvent]: ...
    async def heads(self, channels: Sequence[str]) -> dict[str, ChannelHead]: ...
    def forget(self, channel: str) -> None: ...
    def expire(self) -> None: ...


Spawn = Callable[[Coroutine[Any, Any, None]], None]


class _ControlRead:
    """One read of the control channel's head, shared by the catch-ups that asked before it
    started."""

    __slots__ = ("done", "started")

    def __init__(self) -> None:
        self.started = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class CatchUp:
    """Brings every feed of ``table`` up to the log, in order with close requests."""

    def __init__(
        self,
        table: FeedTable,
        closes: CloseRequests,
        reader: LogSource,
        listener: ListenerLike,
        settings: PgsseSettings,
        counters: Counters,
        spawn: Spawn,
    ) -> None:
        self._table = table
        self._closes = closes
        self._control = closes.control
        self._reader = reader
        self._listener = listener
        self._settings = settings
        self._counters = counters
        self._spawn = spawn
        self._waking: set[Feed] = set()
        self._control_read: _ControlRead | None = None
        self._control_waiters: list[tuple[int, asyncio.Future[None]]] = []
        #: Loop time at which the listener was lost, until it LISTENs again.
        self._lost_at: float | None = None

    # -- what the listener reports -----------------------------------------------------

    def on_notify(self, pg_channel: str, payload: str) -> None:
        counters = self._counters
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
        feed = self._table.feeds.get(channel)
        if feed is None or feed.pg_name != pg_channel:
            return  # a channel we just left, or a payload naming another channel
        if seq == log.UNKNOWN_SEQ:
            self._wake(feed)  # new events of unknown seqs: the head tells
            return
        if seq <= feed.last_seq:
            return  # already delivered (by a catch-up)
        if (
            seq == feed.last_seq + 1
            and inline is not None
            and not feed.catching_up
            and (feed is self._control or self._closes.current)
        ):
            self._deliver(feed, [LoggedEvent(channel, seq, inline[0], inline[1], created_at)])
            return
        feed.target = max(feed.target, seq)
        feed.control_unread = True
        if feed.last_seq >= 0:
            self.catch_up(feed)

    def on_listening(self, pg_channels: set[str]) -> None:
        feeds = self._table.listened(pg_channels)
        lost_at, self._lost_at = self._lost_at, None
        away = None if lost_at is None else asyncio.get_running_loop().time() - lost_at
        if feeds:
            self._spawn(self.refresh(feeds, reconnected_after=away))

    def on_lost(self) -> None:
        # Notifications cannot arrive until the listener LISTENs again: new streams wait
        # (and get ``retry:`` if it takes too long); open streams stay, and are caught up
        # from the log once the listener is back. Close requests missed meanwhile are
        # applied before any channel event (the control feed is not current).
        self._table.unready_all()
        self._lost_at = asyncio.get_running_loop().time()

    def refresh_soon(self, feeds: list[Feed]) -> None:
        self._spawn(self.refresh(feeds))

    # -- heads -------------------------------------------------------------------------

    async def refresh(self, feeds: list[Feed], reconnected_after: float | None = None) -> None:
        """Read the heads of ``feeds``: make LISTENed feeds ready, catch up missed events.

        ``reconnected_after``: the listener is back after this many seconds away; the gap
        it left is logged (one line per reconnect). Many feeds are read in parts, at once.
        """
        parts = [feeds[i : i + HEADS_PER_READ] for i in range(0, len(feeds), HEADS_PER_READ)]
        if len(parts) > 1:
            await asyncio.gather(*(self.refresh(part, reconnected_after) for part in parts))
            return
        generation = self._listener.connections_made
        names = [feed.name for feed in feeds]
        if self._control not in feeds:
            names.append(CONTROL_CHANNEL)  # in the same read: see _closes_first()
        try:
            heads = await self._reader.heads(names)
            recent = await self._recent_closes(feeds, heads)
        except Exception:
            self._counters.failures += 1
            logger.warning("could not read channel heads; the sweep retries", exc_info=True)
            return
        listening = self._listener.listening
        if reconnected_after is not None:
            _log_reconnect(feeds, heads, reconnected_after, self._listener.backend_pid)
        control_head = heads[CONTROL_CHANNEL].last_seq
        if self._control.last_seq >= 0 and control_head > self._control.target:
            self._control.target = control_head
            self.catch_up(self._control)
        for feed in feeds:
            if self._table.feeds.get(feed.name) is not feed:
                continue
            head = heads[feed.name].last_seq
            # Only a LISTEN that is still in place (on the same connection as when the
            # heads were read) makes a feed ready: see Feed.
            lost = self._listener.connections_made != generation or (feed.pg_name not in listening)
            if feed.last_seq < 0:
                if lost:
                    continue
                if feed is self._control:
                    self._closes.remember(recent)
                feed.last_seq = head
            feed.target = max(feed.target, head)
            feed.control_needed = max(feed.control_needed, control_head)
            if feed.target > feed.last_seq:
                self.catch_up(feed)
            if not lost:
                self._table.make_ready(feed)

    async def _recent_closes(
        self, feeds: list[Feed], heads: dict[str, ChannelHead]
    ) -> list[LoggedEvent]:
        """The latest close requests, when the control feed starts: streams authorized
        before the hub knew where requests stood are matched against them."""
        if self._control not in feeds or self._control.last_seq >= 0:
            return []
        head = heads[CONTROL_CHANNEL].last_seq
        return await self._reader.events_after(
            CONTROL_CHANNEL, max(0, head - REMEMBERED_AT_START), head
        )

    def _wake(self, feed: Feed) -> None:
        """Read ``feed``'s head soon, with those of every other feed woken meanwhile."""
        if not self._waking:
            self._spawn(self._refresh_woken())
        self._waking.add(feed)

    async def _refresh_woken(self) -> None:
        await asyncio.sleep(0)  # the rest of a burst of wake-ups joins this read
        feeds, self._waking = list(self._waking), set()
        await self.refresh(feeds)

    async def sweep(self) -> None:
        """Compare every LISTENed feed with the log, every ``SWEEP_INTERVAL``, forever."""
        while True:
            await asyncio.sleep(self._settings.SWEEP_INTERVAL)
            listening = self._listener.listening
            feeds = [feed for feed in self._table.feeds.values() if feed.pg_name in listening]
            if feeds:
                await self.refresh(feeds)

    # -- catching up -------------------------------------------------------------------

    async def catch_up_to(self, feeds: Sequence[Feed], seqs: dict[str, int]) -> None:
        """A client saw these seqs (it comes from a process a little ahead): catch these
        feeds up to them; :class:`InvalidPosition` if the log itself is behind."""
        behind = [feed for feed in feeds if seqs.get(feed.name, -1) > feed.last_seq]
        heads = await self._reader.heads([feed.name for feed in behind])
        if any(seqs[feed.name] > heads[feed.name].last_seq for feed in behind):
            raise InvalidPosition("future", "position is ahead of the event log")
        for feed in behind:
            feed.target = max(feed.target, seqs[feed.name])
            self.catch_up(feed)

    def catch_up(self, feed: Feed) -> None:
        if feed.catching_up or feed.last_seq < 0:
            return
        if feed.retry_at and asyncio.get_running_loop().time() < feed.retry_at:
            return  # backing off after a failure; the sweep comes back
        feed.catching_up = True
        self._counters.catch_ups += 1
        self._spawn(self._catch_up_from_log(feed))

    async def _catch_up_from_log(self, feed: Feed) -> None:
        try:
            while feed.last_seq < feed.target and self._table.feeds.get(feed.name) is feed:
                events = await self._reader.events_after(feed.name, feed.last_seq, feed.target)
                contiguous = log.contiguous_prefix(events, feed.last_seq)
                if contiguous:
                    if feed is not self._control:
                        await self._closes_first(feed)
                    self._deliver(feed, contiguous)
                    continue
                await self._across_a_gap(feed)
            feed.failures = 0
            feed.retry_at = 0.0
        except Exception:
            self._counters.failures += 1
            feed.failures += 1
            delay = min(self._settings.SWEEP_INTERVAL, 0.1 * 2**feed.failures)
            feed.retry_at = asyncio.get_running_loop().time() + delay
            logger.warning(
                "catch-up of %s failed; retried in %.1f s or by the sweep",
                feed.name,
                delay,
                exc_info=True,
            )
        finally:
            feed.catching_up = False
            if feed is self._control and self._control_waiters:
                if not feed.failures and feed.last_seq < feed.target:
                    self.catch_up(feed)  # its target was raised as it finished
                self._release_control_waiters()

    async def _across_a_gap(self, feed: Feed) -> None:
        """The log does not continue where ``feed`` stopped: the target came from a
        notification pgsse did not send, or events are gone (pruned while the listener
        was away, or deleted by hand). The head tells which."""
        head = (await self._reader.heads([feed.name]))[feed.name]
        feed.target = min(feed.target, head.last_seq)
        if feed.last_seq >= feed.target:
            return
        if head.pruned_seq > feed.last_seq:
            self._lose(feed, min(head.pruned_seq, feed.target), pruned=True)
            return
        # Read again: rows that committed between the first read and the head read are
        # visible now. Whatever is still missing up to the head is gone.
        events = await self._reader.events_after(feed.name, feed.last_seq, feed.target)
        if log.contiguous_prefix(events, feed.last_seq):
            return
        # A hole pruning does not explain: skip to what the log still holds.
        self._lose(feed, events[0].seq - 1 if events else feed.target, pruned=False)

    async def _closes_first(self, feed: Feed) -> None:
        """Return once every close request committed before ``feed``'s events up to its
        target is applied. A target read with the heads comes with the control channel's
        head of the same read (``control_needed``); one raised by a notification needs the
        control head read afresh, after it arrived (shared by the catch-ups of the moment)."""
        if feed.control_unread:
            feed.control_unread = False
            read = self._control_read
            if read is None or read.started:
                read = self._control_read = _ControlRead()
                self._spawn(self._read_control(read))
            await asyncio.shield(read.done)
        if self._control.last_seq < feed.control_needed:
            await self._control_reaches(feed.control_needed)

    async def _read_control(self, read: _ControlRead) -> None:
        await asyncio.sleep(0)  # the catch-ups asking meanwhile share this read
        read.started = True
        try:
            if self._control.last_seq >= 0:  # else no stream has joined: nothing to close
                heads = await self._reader.heads([CONTROL_CHANNEL])
                await self._control_reaches(heads[CONTROL_CHANNEL].last_seq)
        except asyncio.CancelledError:
            read.done.cancel()  # the hub is closing
            raise
        except Exception as exc:
            read.done.set_exception(exc)  # each catch-up waiting fails, and retries
            read.done.exception()  # (marked as seen, should none of them be left)
        else:
            read.done.set_result(None)

    async def _control_reaches(self, seq: int) -> None:
        """Catch the control feed up to ``seq`` (from the log) and wait until it has."""
        control = self._control
        if control.last_seq < 0 or control.last_seq >= seq:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._control_waiters.append((seq, waiter))
        control.target = max(control.target, seq)
        self.catch_up(control)
        self._release_control_waiters()  # if the control feed cannot catch up now
        async with asyncio.timeout(self._settings.READ_TIMEOUT):
            await waiter

    def _release_control_waiters(self) -> None:
        """Resolve the waits for control seqs now applied (and fail the rest if the control
        feed's catch-up stopped short: their catch-ups retry)."""
        still = []
        for seq, waiter in self._control_waiters:
            if waiter.done():
                continue
            if self._control.last_seq >= seq:
                waiter.set_result(None)
            elif not self._control.catching_up:
                waiter.set_exception(ConnectionError("the control channel could not be read"))
            else:
                still.append((seq, waiter))
        self._control_waiters = still

    def _deliver(self, feed: Feed, events: Sequence[LoggedEvent]) -> None:
        if feed is self._control:
            self._closes.apply(events)
            if self._control_waiters:
                self._release_control_waiters()
            feed.wake_waiting()
        else:
            self._counters.delivered += self._table.deliver(feed, events)
            self._counters.delivery_lag.observe(events)

    def _lose(self, feed: Feed, resume_at: int, *, pruned: bool) -> None:
        """Events after ``feed.last_seq`` up to ``resume_at`` are gone: end the feed's streams
        (their resume from the log will get a ``reset``) and go on after the gap."""
        if not pruned:
            self._counters.holes += resume_at - feed.last_seq
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
