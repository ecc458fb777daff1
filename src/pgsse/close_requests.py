"""The hub's side of ``pgsse:control``: close requests and forget notices, in log order.

Requests to close streams (:func:`pgsse.close_streams`) and notices that a channel's
history changed (:func:`pgsse.redact`, :func:`pgsse.purge_channel`) are events of the
reserved channel ``pgsse:control``, which every hub follows for as long as it runs. They
are applied in their log order, each to every stream open at that point.

A stream is authorized in its request phase and joins its hub a moment later: a request
committed in between would miss it. So the view notes the control position before it
authorizes (:meth:`CloseRequests.position`; read from the log when the hub does not know
it yet), and a stream joining later is checked against the latest requests, remembered
here, that came after that position.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Protocol

from pgsse.closing import CLOSE_EVENT, CloseRequest
from pgsse.feed import Feed
from pgsse.forget import FORGET_EVENT, forgotten_channel
from pgsse.log import LoggedEvent
from pgsse.stats import Counters
from pgsse.subscription import EndReason, Subscription

__all__ = ["REMEMBERED_AT_START", "CloseRequests"]

logger = logging.getLogger("pgsse.hub")

#: Close requests remembered for streams whose authorization ran before a request arrived,
#: and how many of the latest a starting hub reads (for streams authorized meanwhile).
REMEMBERED = 1000
REMEMBERED_AT_START = 100


class Forgets(Protocol):
    """What drops the reads of a channel kept for other streams (the log reader)."""

    def forget(self, channel: str) -> None: ...


class CloseRequests:
    """Applies the control channel's events to the open streams (``subscriptions``)."""

    def __init__(
        self,
        control: Feed,
        subscriptions: Iterable[Subscription],
        reader: Forgets,
        counters: Counters,
    ) -> None:
        self.control = control
        self._subscriptions = subscriptions
        self._reader = reader
        self._counters = counters
        self._recent: deque[tuple[int, CloseRequest]] = deque(maxlen=REMEMBERED)

    def position(self) -> int | None:
        """How far requests have been applied here; None until the hub has read where the
        control channel stands (the caller then reads it from the log)."""
        last = self.control.last_seq
        return last if last >= 0 else None

    @property
    def current(self) -> bool:
        """Every request this hub knows of is applied (and it listens for the next)."""
        control = self.control
        return control.ready and not control.catching_up and control.last_seq >= control.target

    def remember(self, events: Sequence[LoggedEvent]) -> None:
        """Requests from before the hub started: kept for streams authorized meanwhile."""
        for event in events:
            request = self._request(event)
            if request is not None:
                self._recent.append((event.seq, request))

    def apply(self, events: Sequence[LoggedEvent]) -> None:
        """Apply the control events right after the control feed's position, in order."""
        for event in events:
            self.control.last_seq = event.seq
            if event.type == FORGET_EVENT:
                self._forget(event)
                continue
            request = self._request(event)
            if request is None:
                continue
            self._recent.append((event.seq, request))
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

    def closed_since(self, position: int, subscription: Subscription) -> bool:
        """Whether a request applied after ``position`` matches ``subscription``."""
        return any(
            seq > position and request.matches(subscription) for seq, request in self._recent
        )

    def _request(self, event: LoggedEvent) -> CloseRequest | None:
        if event.type != CLOSE_EVENT:
            return None
        try:
            return CloseRequest.from_json(event.data)
        except (ValueError, TypeError, KeyError):
            self._counters.foreign_notifications += 1
            logger.warning("ignored a malformed close request: %.80r", event.data)
            return None

    def _forget(self, event: LoggedEvent) -> None:
        # A channel's history changed (redacted, purged): reads of it kept for other
        # streams would replay what it no longer says.
        try:
            channel = forgotten_channel(event.data)
        except (ValueError, TypeError, KeyError):
            self._counters.foreign_notifications += 1
            logger.warning("ignored a malformed forget notice: %.80r", event.data)
            return
        self._reader.forget(channel)
