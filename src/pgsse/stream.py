"""One SSE stream: replay what the client missed, then live events, heartbeats meanwhile.

The stream is an async iterator of bytes and knows nothing of HTTP frameworks: the Django
view wraps it in a ``StreamingHttpResponse``; another server could send it as it is.

Order of operations (why nothing is lost or doubled):

1. send a comment and ``retry:`` at once, so the response headers leave immediately;
2. subscribe: the hub LISTENs first and tells the seq each channel is live from;
3. replay the log from the client's position up to that seq;
4. send the position reached as an id-only frame (the client is now live);
5. deliver live events, skipping any seq the stream already sent.

A position that cannot be resumed (malformed, from another channel set, pruned from the
log, or ahead of it) is answered with a ``reset`` event carrying the reason; the stream then
continues live from the current position, which the ``reset`` event's id carries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable

from pgsse import sse
from pgsse.hub import Hub, SubscribeTimeout
from pgsse.log import LoggedEvent, continues
from pgsse.position import RESET_EVENT, InvalidPosition, format_position, parse_position
from pgsse.retention import rule_for

__all__ = ["RESET_EVENT", "event_stream"]

logger = logging.getLogger("pgsse.stream")

# 2 KiB of comment on connect: some proxies hold the first bytes of a response back.
_PREAMBLE = sse.encode_comment("pgsse " + "." * 2048)
_HEARTBEAT = sse.encode_comment("")


async def event_stream(
    hub: Hub,
    channels: tuple[str, ...],
    resume_from: str | None,
    on_close: Callable[[], None] | None = None,
) -> AsyncIterator[bytes]:
    """Yield the SSE bytes of a stream over canonical ``channels``.

    ``resume_from`` is the client's ``Last-Event-ID`` (None or empty: start live).
    ``on_close`` is called when the stream ends, however it ends.
    """
    try:
        retry = sse.encode_retry(hub.settings.RETRY_MS)
        yield _PREAMBLE + retry
        try:
            subscription, live_from = await hub.subscribe(channels)
        except SubscribeTimeout as exc:
            logger.warning("stream over %s not started: %s", channels, exc)
            yield retry
            return
        try:
            position = dict(live_from)
            frame = _framer(channels, position)
            chunk: list[bytes] = []
            if resume_from:
                try:
                    async for replayed in _replay(hub, channels, resume_from, position, live_from):
                        yield b"".join(map(frame, replayed))
                except InvalidPosition as exc:
                    position.update(live_from)
                    chunk.append(_reset(channels, position, exc))
                except Exception as exc:  # the log is unreachable: let the client come back
                    logger.warning("replay over %s failed: %s; retry asked", channels, exc)
                    yield retry
                    return
            # An id-only frame: the client now knows its position even before any event
            # (the browser stores it without firing an event): a reconnect misses nothing.
            chunk.append(sse.encode_id(format_position(channels, position)) + b"\n")
            while True:
                if chunk:
                    yield b"".join(chunk)
                batch = await subscription.next_batch(hub.settings.HEARTBEAT_INTERVAL)
                if subscription.overflowed or subscription.closed:
                    # Too far behind, or the server is going away: the client reconnects
                    # with its Last-Event-ID and the log fills in.
                    yield retry
                    return
                # Skip what the replay already sent (a client may also come from a process
                # whose hub was a little ahead of ours).
                chunk = [frame(event) for event in batch if event.seq > position[event.channel]]
                if not batch:
                    chunk.append(_HEARTBEAT)
        finally:
            hub.unsubscribe(subscription)
    finally:
        if on_close is not None:
            on_close()


def _reset(channels: tuple[str, ...], position: dict[str, int], exc: InvalidPosition) -> bytes:
    data = json.dumps({"reason": exc.reason, "message": str(exc)})
    return sse.encode_event(RESET_EVENT, data, format_position(channels, position))


async def _replay(
    hub: Hub,
    channels: tuple[str, ...],
    resume_from: str,
    position: dict[str, int],
    live_from: dict[str, int],
) -> AsyncIterator[list[LoggedEvent]]:
    """Batches of the events after ``resume_from``, up to where live delivery takes over.

    Sets ``position`` to the client's first, so every id sent during the replay is exact
    even if the connection drops half-way. Raises :class:`InvalidPosition`.
    """
    start = parse_position(resume_from, channels)
    await _check_not_ahead(hub, start, live_from)
    position.update(start)
    for channel in channels:
        after, upto = start[channel], live_from[channel]
        while after < upto:
            batch = await hub.read_events(channel, after, upto)
            if not continues(batch, after):
                if not rule_for(channel).lossy:
                    raise InvalidPosition("expired", "the event log no longer holds this position")
                position[channel] = upto  # hints only: skip what is gone
                break
            yield batch
            after = batch[-1].seq


async def _check_not_ahead(hub: Hub, start: dict[str, int], live_from: dict[str, int]) -> None:
    # A client may come from a process whose hub is a little ahead of ours: only the
    # log itself can say a position is in the future.
    ahead = [channel for channel, seq in start.items() if seq > live_from[channel]]
    if ahead:
        heads = await hub.read_heads(ahead)
        if any(start[channel] > heads[channel].last_seq for channel in ahead):
            raise InvalidPosition("future", "position is ahead of the event log")


def _framer(channels: tuple[str, ...], position: dict[str, int]) -> Callable[[LoggedEvent], bytes]:
    """A function that advances ``position`` past an event and returns the event's frame.

    A stream over one channel uses the frame the event caches for all such streams;
    over several channels, each frame's ``id:`` carries the whole position.
    """
    if len(channels) == 1:
        (only,) = channels

        def frame_alone(event: LoggedEvent) -> bytes:
            position[only] = event.seq
            return event.frame_alone

        return frame_alone

    def frame(event: LoggedEvent) -> bytes:
        position[event.channel] = event.seq
        return sse.encode_id(format_position(channels, position)) + event.body

    return frame
