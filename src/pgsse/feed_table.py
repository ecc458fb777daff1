"""The channels streams follow in one process: a feed each, LISTENed while it is retained.

A feed is retained by every stream that follows its channel or waits to, and by the hub
for ``pgsse:control``; the first retain LISTENs (through the listener), the last release
UNLISTENs. Streams over the same channels share a :class:`~pgsse.channel_set.ChannelSet`,
whose frames are built once for them all.

Joining is atomic: a stream joins its channel set only once every feed it needs is ready,
reading the feeds' seqs and joining with no ``await`` in between, so it replays the log up
to those seqs and everything after them reaches it live. A stream waiting to join is
parked on the feeds it waits for, and woken when one becomes ready, is delivered far
enough, or goes away (and by its own end: a shutdown, a close request, the client leaving).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import Protocol

from pgsse.channel_set import ChannelSet
from pgsse.closing import CONTROL_CHANNEL
from pgsse.feed import Feed
from pgsse.log import LoggedEvent
from pgsse.subscription import Subscription

__all__ = ["FeedTable", "ListenerLike", "StreamEnded"]


class StreamEnded(Exception):
    """A stream waiting to join ended first (the hub shuts down, a close request, the
    client left)."""


class ListenerLike(Protocol):
    """What the hub asks of its listener (a :class:`~pgsse.listener.Listener`, or a fake in
    tests)."""

    @property
    def listening(self) -> AbstractSet[str]: ...

    backend_pid: int | None
    connections_made: int

    def start(self) -> None: ...
    async def close(self) -> None: ...
    def want_more(self, pg_channel: str) -> None: ...
    def want_less(self, pg_channel: str) -> None: ...


class FeedTable:
    """Feeds by channel name, and the channel sets of the streams that joined them."""

    def __init__(self, listener: ListenerLike, refresh: Callable[[list[Feed]], None]) -> None:
        self.feeds: dict[str, Feed] = {}
        #: The same feeds by PostgreSQL channel: a LISTEN that completes names those.
        self._by_pg_name: dict[str, Feed] = {}
        self.channel_sets: dict[tuple[str, ...], ChannelSet] = {}
        self._listener = listener
        self._refresh = refresh

    def retain(self, name: str) -> Feed:
        """``name``'s feed, LISTENed to (soon) for as long as it is retained."""
        feed = self.feeds.get(name)
        if feed is None:
            feed = self.feeds[name] = Feed(name)
            self._by_pg_name[feed.pg_name] = feed
            self._listener.want_more(feed.pg_name)
            if feed.pg_name in self._listener.listening:
                # Still LISTENing from a stream that just left (its UNLISTEN not yet
                # sent): no LISTEN will announce this feed, so read its head now.
                self._refresh([feed])
        feed.refs += 1
        return feed

    def release(self, names: Iterable[str]) -> None:
        for name in names:
            feed = self.feeds[name]
            feed.refs -= 1
            if feed.refs == 0:
                del self.feeds[name]
                del self._by_pg_name[feed.pg_name]
                self._listener.want_less(feed.pg_name)
                feed.wake_all()

    async def until_joinable(
        self,
        subscription: Subscription,
        feeds: Sequence[Feed],
        at_least: dict[str, int] | None,
        *,
        catch_up_to: Callable[[Sequence[Feed], dict[str, int]], Awaitable[None]],
        ending: Callable[[], bool],
    ) -> None:
        """Wait until ``feeds`` and ``pgsse:control`` are ready, and delivered as far as
        the client has seen (``at_least``: ``catch_up_to`` brings this hub there). Raises
        :class:`StreamEnded` if the hub is ``ending`` or the subscription ends first."""
        checked = False
        parked_on: list[Feed] = []
        waited_for = (*feeds, self.feeds[CONTROL_CHANNEL])
        try:
            while True:
                if ending() or subscription.end_reason is not None:
                    raise StreamEnded("the hub is shutting down, or the stream ended")
                blocker = self.blocker(waited_for, at_least)
                if blocker is None:
                    return
                feed, seq = blocker
                if seq >= 0 and not checked:
                    checked = True
                    await catch_up_to(feeds, at_least or {})
                    continue
                waiter = subscription.park()
                feed.waiting.append((seq, subscription))
                parked_on.append(feed)
                await waiter
        finally:
            for feed in parked_on:  # nothing left behind that holds the subscription
                feed.waiting = [entry for entry in feed.waiting if entry[1] is not subscription]

    def blocker(
        self, feeds: Sequence[Feed], at_least: dict[str, int] | None
    ) -> tuple[Feed, int] | None:
        """The first feed a stream must wait for, and the seq it must reach (-1: only
        ready); None when it may join now. ``at_least`` is the client's position."""
        for feed in feeds:
            if not feed.ready:
                return feed, -1
        if at_least:
            for feed in feeds:
                wanted = at_least.get(feed.name, -1)
                if wanted > feed.last_seq:
                    return feed, wanted
        return None

    def join(self, subscription: Subscription, feeds: Sequence[Feed]) -> dict[str, int]:
        """Add ``subscription`` to its channel set; return the set's position. Atomic (no
        await): the position read and the joining are one step."""
        channels = subscription.channels
        channel_set = self.channel_sets.get(channels)
        if channel_set is None:
            channel_set = self.channel_sets[channels] = ChannelSet(channels, feeds)
            for feed in feeds:
                feed.channel_sets.append(channel_set)
        channel_set.subscribers.add(subscription)
        subscription.joined = True
        return channel_set.position()

    def leave(self, subscription: Subscription) -> None:
        """Remove a joined ``subscription`` from its channel set, and release its feeds."""
        channel_set = self.channel_sets[subscription.channels]
        channel_set.subscribers.discard(subscription)
        if not channel_set.subscribers:
            del self.channel_sets[subscription.channels]
            for name in channel_set.channels:
                self.feeds[name].channel_sets.remove(channel_set)
        self.release(subscription.channels)

    def deliver(self, feed: Feed, events: Sequence[LoggedEvent]) -> int:
        """Hand ``events`` to the streams of ``feed``; return the number of deliveries."""
        delivered = feed.deliver(events)
        if feed.waiting:
            feed.wake_waiting()
        return delivered

    def make_ready(self, feed: Feed) -> None:
        feed.ready = True
        feed.wake_waiting()

    def unready_all(self) -> None:
        """The listener is lost: no feed receives notifications until it LISTENs again."""
        for feed in self.feeds.values():
            feed.ready = False

    def listened(self, pg_channels: set[str]) -> list[Feed]:
        """The feeds whose LISTEN just completed."""
        found = (self._by_pg_name.get(pg_channel) for pg_channel in pg_channels)
        return [feed for feed in found if feed is not None]
