"""A channel as one hub sees it: who follows it, and how far delivery to them has got."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pgsse.channels import pg_channel_name
from pgsse.log import LoggedEvent
from pgsse.subscription import Subscription

__all__ = ["Feed"]


class Feed:
    """A channel's subscribers and ``last_seq``, the newest seq handed to them.

    ``last_seq`` is -1 until LISTEN is in place and the log's head has been read (then
    ``ready`` is set); ``target`` is the highest seq known to exist, which a catch-up from
    the log brings ``last_seq`` up to.
    """

    __slots__ = (
        "catching_up",
        "last_seq",
        "name",
        "pg_name",
        "ready",
        "refs",
        "subscribers",
        "target",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.pg_name = pg_channel_name(name)
        self.subscribers: set[Subscription] = set()
        self.refs = 0  # streams registered or waiting to register
        self.last_seq = -1
        self.target = 0
        self.catching_up = False
        self.ready = asyncio.Event()

    def deliver(self, events: Sequence[LoggedEvent]) -> int:
        """Hand ``events`` (the seqs right after ``last_seq``) to every subscriber.

        Returns the number of deliveries.
        """
        for event in events:
            self.last_seq = event.seq
            for subscription in self.subscribers:
                subscription.push(event)
        return len(events) * len(self.subscribers)
