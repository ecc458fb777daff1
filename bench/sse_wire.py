"""The little HTTP/1.1 both baseline servers write, kept identical between them.

The SSE frames themselves are pgsse's own (:mod:`pgsse.sse`), from pgsse's notification
payload read by :func:`pgsse.log.parse_payload`: the baselines parse and encode nothing
of their own.
"""

from __future__ import annotations

from pgsse.log import parse_payload
from pgsse.sse import encode_event

#: Response head of a stream: chunked, like uvicorn's streaming responses.
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
)
REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
    b"content-length: 32\r\nconnection: close\r\n\r\nno database connection for you\r\n"
)


def chunk(body: bytes) -> bytes:
    """``body`` as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(body), body)


#: What a stream gets first: a comment, the retry hint, and an id-only frame (it is live).
GREETING = chunk(b": bench\nretry: 2000\n\nid: 0\n\n")


def frame_from_payload(payload: str) -> bytes:
    """The chunked SSE frame of a pgsse notification (the bench's events are all inline)."""
    _channel, seq, inline, _created_at = parse_payload(payload)
    if inline is None:
        raise ValueError("the baselines serve only events small enough to be inline")
    event_type, data = inline
    return chunk(encode_event(event_type, data, str(seq)))
