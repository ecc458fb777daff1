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
   each read only once the previous one has been written, at most ``MAX_REPLAY_BYTES`` per
   open (see :mod:`pgsse.replay`); then the position reached, as an id-only frame (the
   client is now live);
3. live: every event after it, frames shared with every stream of the same channels.

Each phase only says what to write next; every frame is written by one ``yield`` in
:meth:`Stream.chunks`, around which the hub's clock sees the write start and end (and
ends a stream whose write does not complete in ``WRITE_TIMEOUT``). The stream's
subscription exists from its first byte, so a shutdown or a close request ends a stream
still waiting to subscribe, too.

A position that cannot be resumed (malformed, from another channel set, pruned from the
log, or ahead of it) is answered with a ``reset`` event carrying the reason; the stream then
continues live from the current position, which the ``reset`` event's id carries.
A stream the server ends (shutdown, too slow, closed on purpose, too old) sends ``retry:``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable

from pgsse import sse
from pgsse.admission import Place
from pgsse.hub import Hub, SubscribeTimeout
from pgsse.position import RESET_EVENT, InvalidPosition, parse_position
from pgsse.replay import Replay
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
        "_next",
        "_place",
        "_replay",
        "channels",
        "client",
        "close_position",
        "drop",
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
        #: Drops the client's connection, for a stream aborted while Django's handler
        #: serves it (under the wrapper, serve_stream() drops it; see pgsse.transport).
        self.drop: Callable[[], object] | None = None
        self.subscription: Subscription | None = None
        self.opened_at = time.monotonic()
        #: Events written to the client, replayed ones included.
        self.sent = 0
        self.end_reason: str | None = None
        self._left = False
        self._replay: Replay | None = None
        # The phase that says what to write next: a plain function, not a bound method,
        # which would hold the stream in a reference cycle.
        self._next: Callable[[Stream], Awaitable[bytes | None]] = Stream._handshake

    @property
    def aborted(self) -> bool:
        """The hub cancelled the task serving this stream (it could not end by itself)."""
        return self.subscription is not None and self.subscription.aborted

    @property
    def left(self) -> bool:
        """The client went away (nothing may be sent any more)."""
        return self._left

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
        clock = hub.clock
        # Watched by the hub's clock from before the first byte: every write below may
        # time out, the first comment and the last retry: included.
        self.subscription = subscription = hub.track(self.channels, self.client)
        if self._left:
            subscription.end(EndReason.CLIENT_LEFT)
        try:
            if before is not None:
                await before()
            # The one write primitive: every frame of the stream passes through this yield
            # (the phases below only say what to write next), and the clock sees it. Lean
            # on purpose, it runs once per event per stream: the hub's coarse clock
            # instead of loop.time(), attributes set inline, and the live phase waits here
            # itself rather than in a coroutine of its own (a frame more per open stream).
            while True:
                if self._next is Stream._live:
                    waiter = subscription.waiter()
                    if waiter is not None:
                        await waiter
                        continue
                    if subscription.recheck_due and subscription.end_reason is None:
                        await self._recheck(subscription)
                        continue
                    chunk = self._live_chunk(subscription)
                elif self._next is Stream._done:
                    break
                else:
                    ready = await self._next(self)
                    if ready is None:
                        continue  # on to the next phase, nothing to write yet
                    chunk = ready
                subscription.in_flight = len(chunk)
                subscription.writing_since = clock.now
                yield chunk
                subscription.writing_since = 0.0
                subscription.in_flight = 0
                subscription.last_write = clock.now
        finally:
            self.end_reason = subscription.end_reason
            hub.unsubscribe(subscription)
            if subscription.aborted and self.drop is not None:
                self.drop()
            self._finish()

    # -- handshake ---------------------------------------------------------------------

    async def _handshake(self) -> bytes:
        """At once, so that the response headers leave: a comment, and ``retry:``."""
        self._next = Stream._join
        return _PREAMBLE + self.hub.retry_frame

    async def _join(self) -> bytes | None:
        """Subscribe (the hub LISTENs first and says from which seqs the stream is live);
        then the replay up to there, or ``retry:`` if the hub could not take the stream."""
        subscription = self.subscription
        assert subscription is not None
        start: dict[str, int] | None = None
        invalid: InvalidPosition | None = None
        if self.resume_from:
            try:
                start = parse_position(self.resume_from, self.channels)
            except InvalidPosition as exc:
                invalid = exc
        reauthorize = self.recheck is not None
        try:
            try:
                live_from = await self.hub.subscribe(
                    subscription, self.close_position, at_least=start, reauthorize=reauthorize
                )
            except InvalidPosition as exc:  # ahead of the log itself
                start, invalid = None, exc
                live_from = await self.hub.subscribe(
                    subscription, self.close_position, reauthorize=reauthorize
                )
        except SubscribeTimeout as exc:
            if subscription.end_reason is None:
                subscription.end(EndReason.NOT_STARTED)
                logger.warning("stream over %s not started: %s", self.channels, exc)
            else:  # ended while it waited: shutting down, closed on purpose, client gone
                logger.info(
                    "stream over %s ended before it started: %s",
                    self.channels,
                    subscription.end_reason,
                )
            return self._last_words()
        logger.info(
            "stream opened over %s",
            ",".join(self.channels),
            extra={"channels": self.channels, "client": self.client, "resumed": bool(start)},
        )
        self._replay = Replay(
            self.hub.reader,
            self.channels,
            live_from,
            start,
            invalid,
            self.hub.settings.MAX_REPLAY_BYTES,
        )
        self._next = Stream._replaying
        return await self._replaying()

    # -- replay ------------------------------------------------------------------------

    async def _replaying(self) -> bytes | None:
        """What the client missed, a batch at a time, then its position (see Replay)."""
        subscription = self.subscription
        replay = self._replay
        assert subscription is not None
        assert replay is not None
        if subscription.end_reason is not None:
            return self._last_words()  # fell too far behind meanwhile, or closed
        try:
            chunk = await replay.next_chunk()
        except Exception:
            self.hub.counters.failures += 1
            logger.warning("replay over %s failed; retry asked", self.channels, exc_info=True)
            subscription.end(EndReason.LOG_UNAVAILABLE)
            return self._last_words()
        self.sent = replay.events
        if chunk is not None:
            return chunk
        self._replay = None
        if replay.over_budget:
            subscription.end(EndReason.REPLAY_LIMIT)
            return self._last_words()
        self._next = Stream._live
        return None

    # -- live --------------------------------------------------------------------------

    async def _live(self) -> bytes | None:
        """The live phase's marker: :meth:`chunks` runs it inline (see
        :meth:`_live_chunk`)."""
        raise AssertionError("the live phase runs in chunks()")

    def _live_chunk(self, subscription: Subscription) -> bytes:
        """The frames queued for the stream, joined; a heartbeat if none; ``retry:`` once
        the stream ends. Called once the subscription's waiter says something is due."""
        if subscription.end_reason is not None:
            # Too far behind, closed on purpose, or the server is going away: the client
            # reconnects with its Last-Event-ID and the log fills in.
            return self._last_words()
        frames = subscription.pending
        if frames:
            chunk = frames[0] if len(frames) == 1 else b"".join(frames)
            self.sent += len(frames)
            # Emptied in place: a new list per stream per event would be one more object
            # for the collector's full passes to walk.
            frames.clear()
            subscription.pending_bytes = 0
        else:
            chunk = _HEARTBEAT
        subscription.heartbeat_due = False
        return chunk

    def _last_words(self) -> bytes:
        self._next = Stream._done
        return self.hub.retry_frame

    async def _done(self) -> None:
        """The marker of a stream that has written its last frame."""

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
