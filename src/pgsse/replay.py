"""A stream's replay: the events its client missed, batch by batch, then its position.

The log is read from the client's position up to the seqs the stream is live from, one
batch at a time: a batch is read only once the previous one has been written, so a client
that does not read holds one batch, not the backlog. Every frame carries the client's whole
position, exact even if the connection drops half-way.

One open replays at most ``MAX_REPLAY_BYTES`` (and the event that crosses it): the replay
then stops and the stream ends (its reconnect continues from the last id sent), so
that a client reopening from far behind again and again cannot make the server send the
log over and over at full speed (opens are rate-limited too, see :mod:`pgsse.open_rate`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Protocol

from pgsse import sse
from pgsse.log import LoggedEvent, continues
from pgsse.position import RESET_EVENT, InvalidPosition, format_position
from pgsse.retention import rule_for

__all__ = ["Replay", "ReplaySource"]


class ReplaySource(Protocol):
    """What a replay reads: the log (the hub's :class:`~pgsse.log_reader.LogReader`)."""

    async def events_after(self, channel: str, after: int, upto: int) -> list[LoggedEvent]: ...


class Replay:
    """The frames a stream over canonical ``channels`` owes its client before going live.

    ``live_from``: the seq of each channel the stream receives live events after;
    ``start``: the client's position (None: nothing to replay); ``invalid``: why the
    client's position cannot be resumed, if it cannot (a ``reset`` is sent instead).
    """

    __slots__ = (
        "_after",
        "_budget",
        "_channels",
        "_frame",
        "_index",
        "_invalid",
        "_live_from",
        "_position",
        "_reader",
        "_start",
        "done",
        "events",
        "over_budget",
    )

    def __init__(
        self,
        reader: ReplaySource,
        channels: tuple[str, ...],
        live_from: dict[str, int],
        start: dict[str, int] | None,
        invalid: InvalidPosition | None,
        budget: int | None,
    ) -> None:
        self._reader = reader
        self._channels = channels
        self._live_from = live_from
        self._start = start
        self._invalid = invalid
        self._budget = budget
        self._position = dict(live_from)
        if start is not None:
            self._position.update(start)
        self._frame = _framer(channels, self._position)
        self._index = 0
        self._after = start[channels[0]] if start is not None else 0
        #: Events replayed so far.
        self.events = 0
        #: Everything is sent: the stream is live.
        self.done = False
        #: The replay stopped at its byte budget: the stream must end (and be resumed).
        self.over_budget = False

    async def next_chunk(self) -> bytes | None:
        """The next batch's frames, then the position as an id-only frame (after a
        ``reset`` if the position could not be resumed); None when all is sent.

        Raises whatever reading the log raises (the stream ends and is resumed later).
        """
        if self.over_budget or self.done:
            return None
        if self._start is not None:
            try:
                chunk = await self._next_batch()
            except InvalidPosition as exc:
                self._start, self._invalid = None, exc
                chunk = None
            if chunk is not None:
                return chunk
            self._start = None
        self.done = True
        position = self._position
        chunk = b""
        if self._invalid is not None:
            position = dict(self._live_from)
            data = json.dumps({"reason": self._invalid.reason, "message": str(self._invalid)})
            chunk = sse.encode_event(RESET_EVENT, data, format_position(self._channels, position))
        # An id-only frame: the client now knows its position even before any event (the
        # browser stores it without firing an event): a reconnect misses nothing.
        return chunk + sse.encode_id(format_position(self._channels, position)) + b"\n"

    async def _next_batch(self) -> bytes | None:
        assert self._start is not None
        while self._index < len(self._channels):
            channel = self._channels[self._index]
            upto = self._live_from[channel]
            if self._after < upto:
                batch = await self._reader.events_after(channel, self._after, upto)
                if continues(batch, self._after):
                    return self._frames(batch)
                if not rule_for(channel).lossy:
                    raise InvalidPosition("expired", "the event log no longer holds this position")
                self._position[channel] = upto  # hints only: skip what is gone
            self._index += 1
            if self._index < len(self._channels):
                self._after = self._start[self._channels[self._index]]
        return None

    def _frames(self, batch: Sequence[LoggedEvent]) -> bytes:
        """The frames of ``batch``, as far as the budget goes (one event at least)."""
        if self._budget is None:
            frames = [self._frame(event) for event in batch]
        else:
            frames = []
            for event in batch:
                frame = self._frame(event)
                frames.append(frame)
                self._budget -= len(frame)
                if self._budget <= 0:
                    self.over_budget = True
                    self._index = len(self._channels)  # nothing more this time
                    break
        self._after = batch[len(frames) - 1].seq
        self.events += len(frames)
        return b"".join(frames)


def _framer(channels: tuple[str, ...], position: dict[str, int]) -> Callable[[LoggedEvent], bytes]:
    """A function that advances ``position`` past an event and returns its frame."""
    if len(channels) == 1:
        (only,) = channels

        def frame_alone(event: LoggedEvent) -> bytes:
            position[only] = event.seq
            return event.frame_alone  # shared by every stream that replays it

        return frame_alone

    def frame(event: LoggedEvent) -> bytes:
        position[event.channel] = event.seq
        return sse.encode_id(format_position(channels, position)) + event.body

    return frame
