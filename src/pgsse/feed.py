"""A channel as one hub sees it: which streams follow it, and how far delivery has got."""

from __future__ import annotations

from collections.abc import Sequence

from pgsse.channel_set import ChannelSet
from pgsse.channels import pg_channel_name
from pgsse.log import LoggedEvent
from pgsse.subscription import Subscription

__all__ = ["Feed"]


class Feed:
    """A channel's channel sets and ``last_seq``, the newest seq handed to them.

    ``last_seq`` is -1 until the channel has been LISTENed to and the log's head read after
    that; then the feed is ``ready``. It is unready again while the listener is
    disconnected: only a completed LISTEN makes a feed ready, so a stream never registers on
    a feed whose notifications cannot arrive. ``target`` is the highest seq known to exist,
    which a catch-up from the log brings ``last_seq`` up to.
    """

    __slots__ = (
        "catching_up",
        "channel_sets",
        "control_needed",
        "control_unread",
        "failures",
        "last_seq",
        "name",
        "pg_name",
        "ready",
        "refs",
        "retry_at",
        "target",
        "waiting",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.pg_name = pg_channel_name(name)
        #: Channel sets with at least one stream that include this channel.
        self.channel_sets: list[ChannelSet] = []
        self.refs = 0  # streams registered or waiting to register
        self.last_seq = -1
        self.target = 0
        self.ready = False
        self.catching_up = False
        #: Catch-ups that failed in a row, and the loop time before which the next one is
        #: not tried (exponential backoff; the sweep comes back anyway).
        self.failures = 0
        self.retry_at = 0.0
        #: Close requests come first (see pgsse.catch_up): the control seq that must be
        #: applied before events up to ``target`` are delivered, and whether a notification
        #: raised the target since the control channel's head was last read.
        self.control_needed = 0
        self.control_unread = False
        #: Subscriptions waiting to join until this feed is ready and delivered up to a seq.
        self.waiting: list[tuple[int, Subscription]] = []

    def deliver(self, events: Sequence[LoggedEvent]) -> int:
        """Hand ``events`` (the seqs right after ``last_seq``) to every stream.

        Returns the number of deliveries.
        """
        delivered = 0
        for event in events:
            self.last_seq = event.seq
            for channel_set in self.channel_sets:
                delivered += channel_set.deliver(event)
        return delivered

    def wake_waiting(self) -> None:
        """Wake the subscriptions waiting for this feed whose wait may be over (each looks
        again, and waits again if it must)."""
        if not self.waiting:
            return
        ready = self.ready
        still = []
        for seq, subscription in self.waiting:
            if ready and seq <= self.last_seq:
                subscription.wake()
            else:
                still.append((seq, subscription))
        self.waiting = still

    def wake_all(self) -> None:
        """Wake every subscription waiting for this feed (it is going away)."""
        waiting, self.waiting = self.waiting, []
        for _, subscription in waiting:
            subscription.wake()
