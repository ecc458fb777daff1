"""The open streams over one set of channels: every event's frame is built once for them all.

Streams over the same channels are all at the same position once live: each registers at
the feeds' newest seqs with no ``await`` in between, replays up to there, and from then on
receives every event. So their next frame is the same bytes, ``id:`` included, even when
the id carries one seq per channel. A :class:`ChannelSet` builds it once and hands the same
``bytes`` object to every stream of the set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from pgsse.position import fingerprint

if TYPE_CHECKING:
    from pgsse.log import LoggedEvent
    from pgsse.subscription import Subscription

__all__ = ["ChannelSet", "Delivered"]


class Delivered(Protocol):
    """How far one channel of the set has been delivered (a :class:`~pgsse.feed.Feed`)."""

    name: str
    last_seq: int


class ChannelSet:
    """Subscriptions over canonical ``channels``, whose feeds give the current position."""

    __slots__ = ("_id_prefix", "channels", "feeds", "subscribers")

    def __init__(self, channels: tuple[str, ...], feeds: Sequence[Delivered]) -> None:
        self.channels = channels
        #: One feed per channel, in the channels' (canonical) order.
        self.feeds = feeds
        self.subscribers: set[Subscription] = set()
        self._id_prefix = f"id: {fingerprint(channels)}:".encode()

    def position(self) -> dict[str, int]:
        """The seq every stream of the set has reached in each channel."""
        return {feed.name: feed.last_seq for feed in self.feeds}

    def frame(self, event: LoggedEvent) -> bytes:
        """``event``'s frame for these streams; the feeds have already moved past it."""
        if len(self.feeds) == 1:
            return event.frame_alone  # cached on the event, for every single-channel set
        seqs = ".".join([str(feed.last_seq) for feed in self.feeds])
        # Digits and dots only: nothing that encode_id() would have to refuse.
        return b"%s%s\n%s" % (self._id_prefix, seqs.encode(), event.body)

    def deliver(self, event: LoggedEvent) -> int:
        """Queue ``event`` for every stream of the set; return how many streams got it."""
        subscribers = self.subscribers
        if not subscribers:
            return 0
        frame = self.frame(event)
        size = len(frame)
        for subscription in subscribers:
            subscription.push(frame, size)
        return len(subscribers)
