"""The Server-Sent Events wire format, per the WHATWG HTML standard (section 9.2).

Pure functions from values to bytes; nothing here knows about Django or PostgreSQL.

- ``data`` is split on every line ending the spec recognises (``\\r\\n``, ``\\r``, ``\\n``)
  and sent as one ``data:`` line per line; the client joins the lines with ``\\n``, so it
  gets the text back with every line ending as LF. (JSON text, which ``publish()`` sends,
  has no raw line endings and arrives byte for byte.)
- ``event`` and ``id`` are single-line fields: CR, LF or NUL in them would let a value
  inject fields of its own, so they are rejected with :class:`ValueError`.
- An ``id`` containing NUL would make the browser ignore the field; it is rejected too.
"""

from __future__ import annotations

import re

__all__ = [
    "FIELD_FORBIDDEN",
    "encode_comment",
    "encode_event",
    "encode_event_body",
    "encode_id",
    "encode_retry",
    "split_lines",
]

#: Characters that may never appear in an ``event`` or ``id`` value.
FIELD_FORBIDDEN = ("\r", "\n", "\x00")

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Split ``text`` on CRLF, CR and LF, the way an SSE parser joins ``data:`` lines."""
    return _LINE_BREAK.split(text)


def _check_field(name: str, value: str) -> None:
    for char in FIELD_FORBIDDEN:
        if char in value:
            raise ValueError(f"SSE {name} must not contain CR, LF or NUL: {value!r}")


def encode_event_body(event_type: str, data: str) -> bytes:
    """Encode the ``event:`` and ``data:`` lines of an event and its blank line.

    The body is shared by every stream that delivers the event; each stream puts its own
    ``id:`` line in front of it (see :func:`encode_id`).
    """
    _check_field("event type", event_type)
    lines = [f"event: {event_type}"] if event_type else []
    lines.extend(f"data: {line}" for line in split_lines(data))
    return ("\n".join(lines) + "\n\n").encode()


def encode_id(event_id: str) -> bytes:
    """Encode an ``id:`` line."""
    _check_field("id", event_id)
    return f"id: {event_id}\n".encode()


def encode_event(event_type: str, data: str, event_id: str | None = None) -> bytes:
    """Encode a whole event: optional ``id:``, ``event:``, one ``data:`` per line."""
    head = encode_id(event_id) if event_id is not None else b""
    return head + encode_event_body(event_type, data)


def encode_retry(milliseconds: int) -> bytes:
    """Tell the client how long to wait before reconnecting."""
    if milliseconds < 0:
        raise ValueError("retry must be a non-negative number of milliseconds")
    return f"retry: {int(milliseconds)}\n\n".encode()


def encode_comment(text: str = "") -> bytes:
    """A comment line; clients ignore it, proxies see traffic. Used for heartbeats."""
    return (
        b"".join(f":{' ' if line else ''}{line}\n".encode() for line in split_lines(text)) + b"\n"
    )
