"""One SSE stream: replay what the client missed, then live events, heartbeats meanwhile.

A :class:`Stream` is what remains of a request once it has been authorized: its channels,
where the client resumes from, and who it counts against. Nothing of the request object is
kept. Its bytes come from :meth:`Stream.chunks`, an async iterator that knows nothing of
HTTP frameworks: ``pgsse.asgi.wrap()`` sends them with bare ASGI messages, and without the
wrapper the Django view wraps them in a ``StreamingHttpResponse``.

Order of operations (why nothing is lost or doubled):

1. handshake: send a comment and ``retry:`` at once, so the response headers leave
   immediately; subscribe (the hub LISTENs first and tells the seq each channel is live
   from; a client coming from a process a little ahead waits until this one catches up);
2. replay: the log from the client's position up to that seq, in batches bounded in bytes,
   each read only once the previous one has been written; then the position reached, as
   an id-only frame (the client is now live);
3. live: every event after it, frames shared with every stream of the same channels.

A position that cannot be resumed (malformed, from another channel set, pruned from the
log, or ahead of it) is answered with a ``reset`` event carrying the reason; the stream then
continues live from the current position, which the ``reset`` event's id carries.
A stream the server ends (shutdown, too slow, closed on purpose, too old) sends ``retry:``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

from pgsse import sse
from pgsse.admission import Place
from pgsse.hub import Hub, SubscribeTimeout
from pgsse.log import LoggedEvent, continues
from pgsse.position import RESET_EVENT, InvalidPosition, format_position, parse_position
from pgsse.retention import rule_for
from pgsse.subscription import EndReason, Subscription

__all__ = ["RESET_EVENT", "Stream"]

logger = logging.getLogger("pgsse.stream")

# 2 KiB of comment on connect: some proxies hold the first bytes of a response back.
_PREAMBLE = sse.encode_comment("pgsse " + "." * 2048)
_HEARTBEAT = sse.encode_comment("")

#: A re-check of the stream's authorization: True if it may go on.
Recheck = Callable[[], Awaitable[bool]]


class Stream:
    """An authorized stream over canonical ``channels``, resuming from ``resume_from``
    (the client's ``Last-Event-ID``; None or empty: start live)."""

    __slots__ = (
        "_left",
        "_place",
        "channels",
        "client",
        "close_position",
        "end_reason",
        "hub",
        "opened_at",
        "recheck",
        "resume_from",
        "sent",
        "subscription",
    )

    def __init__(
        self,
        hub: Hub,
        channels: tuple[str, ...],
        resume_from: str | None = None,
        *,
        client: str = "",
        place: Place | None = None,
        close_position: int | None = None,
        recheck: Recheck | None = None,
    ) -> None:
        self.hub = hub
        self.channels = channels
        self.resume_from = resume_from or None
        self.client = client
        self._place = place
        self.close_position = close_position
        #: Asked every REAUTHORIZE_INTERVAL, when set.
        self.recheck = recheck
        self.subscription: Subscription | None = None
        self.opened_at = time.monotonic()
        #: Events written to the client, replayed ones included.
        self.sent = 0
        self.end_reason: str | None = None
        self._left = False

    @property
    def aborted(self) -> bool:
        """The hub cancelled the task serving this stream (it could not end by itself)."""
        return self.subscription is not None and self.subscription.aborted

    def client_left(self) -> None:
        """The client went away: end the stream (servers that stop sending tell us so)."""
        self._left = True
        if self.subscription is not None:
            self.subscription.end(EndReason.CLIENT_LEFT)

    def discard(self) -> None:
        """The stream will never be served: give its place back."""
        if self._place is not None:
            self._place.release()

    async def chunks(
        self, before: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncGenerator[bytes, None]:
        """The stream's bytes, until the client leaves or the server ends it.

        ``before`` is awaited first, in the task that iterates (the view closes the
        request's database connections there).
        """
        hub = self.hub
        try:
            if before is not None:
                await before()
            yield _PREAMBLE + hub.retry_frame
            joined = await self._join()
            if joined is None:
                yield hub.retry_frame
                return
            subscription, live_from, start, invalid = joined
            try:
                async for chunk in self._replay(subscription, live_from, start, invalid):
                    yield chunk
                # The live loop runs once per event per stream: kept lean on purpose (the
                # hub's coarse clock instead of loop.time(), attributes set inline).
                while subscription.end_reason is None:
                    waiter = subscription.waiter()
                    if waiter is not None:
                        await waiter
                        if subscription.end_reason is not None:
                            break
                    if subscription.recheck_due:
                        await self._recheck(subscription)
                        continue
                    frames = subscription.pending
                    if frames:
                        chunk = frames[0] if len(frames) == 1 else b"".join(frames)
                        self.sent += len(frames)
                        # Emptied in place: a new list per stream per event would be one
                        # more object for the collector's full passes to walk.
                        frames.clear()
                        subscription.pending_bytes = 0
                    else:
                        chunk = _HEARTBEAT
                    subscription.heartbeat_due = False
                    subscription.in_flight = len(chunk)
                    subscription.writing_since = hub.now
                    yield chunk
                    subscription.writing_since = 0.0
                    subscription.in_flight = 0
                    subscription.last_write = hub.now
                # Too far behind, closed on purpose, or the server is going away: the client
                # reconnects with its Last-Event-ID and the log fills in.
                yield hub.retry_frame
            finally:
                self.end_reason = subscription.end_reason
                hub.unsubscribe(subscription)
        finally:
            self._finish()

    # -- handshake ---------------------------------------------------------------------

    async def _join(
        self,
    ) -> tuple[Subscription, dict[str, int], dict[str, int] | None, InvalidPosition | None] | None:
        """Subscribe; return the subscription, the seqs it is live from, the client's
        position (None: start live) and why that position cannot be resumed, if it cannot.
        None if the hub could not take the stream (it then asks the client to retry)."""
        start: dict[str, int] | None = None
        invalid: InvalidPosition | None = None
        if self.resume_from:
            try:
                start = parse_position(self.resume_from, self.channels)
            except InvalidPosition as exc:
                invalid = exc
        try:
            try:
                subscription, live_from = await self.hub.subscribe(
                    self.channels,
                    self.client,
                    self.close_position,
                    at_least=start,
                    reauthorize=self.recheck is not None,
                )
            except InvalidPosition as exc:  # ahead of the log itself
                start, invalid = None, exc
                subscription, live_from = await self.hub.subscribe(
                    self.channels,
                    self.client,
                    self.close_position,
                    reauthorize=self.recheck is not None,
                )
        except SubscribeTimeout as exc:
            self.end_reason = EndReason.NOT_STARTED
            logger.warning("stream over %s not started: %s", self.channels, exc)
            return None
        self.subscription = subscription
        if self._left:
            subscription.end(EndReason.CLIENT_LEFT)
        logger.info(
            "stream opened over %s",
            ",".join(self.channels),
            extra={"channels": self.channels, "client": self.client, "resumed": bool(start)},
        )
        return subscription, live_from, start, invalid

    # -- replay ------------------------------------------------------------------------

    async def _replay(
        self,
        subscription: Subscription,
        live_from: dict[str, int],
        start: dict[str, int] | None,
        invalid: InvalidPosition | None,
    ) -> AsyncIterator[bytes]:
        """What the client missed, in batches, then its position as an id-only frame.

        ``position`` starts at the client's, so every id sent during the replay is exact
        even if the connection drops half-way.
        """
        position = dict(live_from)
        if start is not None:
            position.update(start)
            frame = self._framer(position)
            loop = asyncio.get_running_loop()
            try:
                for channel in self.channels:
                    after, upto = start[channel], live_from[channel]
                    while after < upto:
                        batch = await self.hub.reader.events_after(channel, after, upto)
                        if not continues(batch, after):
                            if not rule_for(channel).lossy:
                                raise InvalidPosition(
                                    "expired", "the event log no longer holds this position"
                                )
                            position[channel] = upto  # hints only: skip what is gone
                            break
                        chunk = b"".join([frame(event) for event in batch])
                        self.sent += len(batch)
                        # The next batch is read only once this one is written: a client
                        # that does not read holds one batch, not the whole backlog.
                        subscription.writing(loop.time(), len(chunk))
                        yield chunk
                        subscription.written(loop.time())
                        if subscription.end_reason is not None:
                            return  # fell too far behind meanwhile, or closed: resume later
                        after = batch[-1].seq
            except InvalidPosition as exc:
                invalid = exc
            except Exception:
                self.hub.counters.failures += 1
                logger.warning("replay over %s failed; retry asked", self.channels, exc_info=True)
                subscription.end(EndReason.LOG_UNAVAILABLE)
                return
        if invalid is not None:
            position = dict(live_from)
            data = json.dumps({"reason": invalid.reason, "message": str(invalid)})
            yield sse.encode_event(RESET_EVENT, data, format_position(self.channels, position))
        # An id-only frame: the client now knows its position even before any event (the
        # browser stores it without firing an event): a reconnect misses nothing.
        yield sse.encode_id(format_position(self.channels, position)) + b"\n"

    def _framer(self, position: dict[str, int]) -> Callable[[LoggedEvent], bytes]:
        """A function that advances ``position`` past an event and returns its frame."""
        if len(self.channels) == 1:
            (only,) = self.channels

            def frame_alone(event: LoggedEvent) -> bytes:
                position[only] = event.seq
                return event.frame_alone  # shared by every stream that replays it

            return frame_alone
        channels = self.channels

        def frame(event: LoggedEvent) -> bytes:
            position[event.channel] = event.seq
            return sse.encode_id(format_position(channels, position)) + event.body

        return frame

    # -- live --------------------------------------------------------------------------

    async def _recheck(self, subscription: Subscription) -> None:
        subscription.recheck_due = False
        if self.recheck is None:
            return
        try:
            allowed = await self.recheck()
        except Exception:
            self.hub.counters.failures += 1
            logger.warning("re-checking a stream over %s failed", self.channels, exc_info=True)
            return  # keep the stream: the next re-check, or its maximum age, decides
        if not allowed:
            subscription.end(EndReason.REAUTHORIZATION)

    def _finish(self) -> None:
        self.discard()
        reason = self.end_reason or EndReason.CLIENT_LEFT
        logger.info(
            "stream closed over %s: %s after %.1f s, %s events",
            ",".join(self.channels),
            reason,
            time.monotonic() - self.opened_at,
            self.sent,
            extra={
                "channels": self.channels,
                "client": self.client,
                "reason": reason,
                "duration": round(time.monotonic() - self.opened_at, 3),
                "events": self.sent,
            },
        )
