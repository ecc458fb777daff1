"""An event-stream parser written from the WHATWG HTML standard, independent of pgsse.

It follows "9.2.6 Interpreting an event stream" step by step, so the tests can check what
a browser makes of the bytes pgsse sends without trusting pgsse's own reading of the spec:

- the stream is decoded as UTF-8 (invalid bytes become U+FFFD) and one leading BOM is
  dropped;
- lines end with CRLF, a lone LF or a lone CR, even when a chunk ends between CR and LF;
- an empty line dispatches the event; a line starting with ``:`` is a comment;
- ``field:value`` (one leading space of the value removed) or a bare ``field`` (empty value);
- ``event`` sets the type buffer, ``data`` appends value + LF, ``id`` sets the last event ID
  buffer unless the value contains NUL, ``retry`` sets the reconnection time if the value is
  ASCII digits only; every other field is ignored;
- dispatch: the last event ID is set from its buffer (which is never reset, so it persists
  across events); an empty data buffer dispatches nothing; one trailing LF is removed;
  the type is ``message`` unless the type buffer says otherwise;
- at the end of the stream, an unfinished event is discarded.

It is the one SSE parser of the tests and the benchmark. Clients that also need the frames a
browser never dispatches (the id-only frame that says a stream is live, a ``retry:`` goodbye)
ask for them with ``every_frame=True``: each frame that carried a field is then returned,
with the names of its fields.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Event", "EventStreamParser", "parse"]

_LINE_END = re.compile(r"\r\n|\r|\n")
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Event:
    """What a ``MessageEvent`` exposes: ``type``, ``data`` and ``lastEventId``."""

    type: str
    data: str
    last_event_id: str
    #: The fields the frame carried (``id``, ``event``, ``data``, ``retry``...), filled in
    #: with ``every_frame=True`` only. A frame without data has the raw type buffer as
    #: ``type`` (often empty) and ``data == ""``.
    fields: frozenset[str] = field(default=frozenset(), compare=False)


class EventStreamParser:
    """Feed it bytes as they arrive; it returns the events each chunk completes."""

    def __init__(self, every_frame: bool = False) -> None:
        self._every_frame = every_frame
        self._fields: set[str] = set()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False
        self._pending = ""
        self._skip_lf = False  # the previous chunk ended with CR: a leading LF belongs to it
        self._data = ""
        self._event_type = ""
        self._last_event_id_buffer = ""
        #: The last event ID string of the event source (what ``Last-Event-ID`` would send).
        self.last_event_id = ""
        #: The reconnection time in milliseconds, once a valid ``retry`` field was seen.
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        text = self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._skip_lf and text:
            self._skip_lf = False
            if text.startswith("\n"):
                text = text[1:]
        self._pending += text
        events: list[Event] = []
        start = 0
        for match in _LINE_END.finditer(self._pending):
            event = self._process_line(self._pending[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        self._pending = self._pending[start:]
        # A CR at the very end of what we have may be the first half of CRLF; the regex
        # already ended the line on it, so a LF at the start of the next chunk is no line.
        if start and self._pending == "" and text.endswith("\r"):
            self._skip_lf = True
        return events

    def close(self) -> list[Event]:
        """End of stream: an unfinished line or event is discarded, per the spec."""
        self._decoder.decode(b"", final=True)
        self._fields = set()
        self._pending = ""
        self._data = ""
        self._event_type = ""
        return []

    def _process_line(self, line: str) -> Event | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if self._every_frame:
            self._fields.add(name)
        if name == "event":
            self._event_type = value
        elif name == "data":
            self._data += value + "\n"
        elif name == "id" and "\x00" not in value:  # an id with NUL is ignored
            self._last_event_id_buffer = value
        elif name == "retry" and _DIGITS.fullmatch(value):  # anything else is ignored
            self.retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        self.last_event_id = self._last_event_id_buffer
        fields, self._fields = frozenset(self._fields), set()
        if self._data == "":
            frame = Event(self._event_type, "", self.last_event_id, fields) if fields else None
            self._event_type = ""
            return frame
        data = self._data[:-1] if self._data.endswith("\n") else self._data
        event = Event(self._event_type or "message", data, self.last_event_id, fields)
        self._data = ""
        self._event_type = ""
        return event


def parse(chunks: bytes | Iterable[bytes]) -> tuple[list[Event], EventStreamParser]:
    """Parse a whole stream (bytes, or chunks of it); return its events and the parser."""
    parser = EventStreamParser()
    events: list[Event] = []
    for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events, parser
