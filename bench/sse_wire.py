"""The little HTTP/1.1 and SSE both baseline servers write, kept identical between them."""

from __future__ import annotations

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
    """The SSE frame of a pgsse notification payload ``seq[@stamp]\\tchannel\\ttype\\tdata``,
    chunked."""
    head, _channel, event_type, data = payload.split("\t", 3)
    seq = head.partition("@")[0]  # the head may carry the event's timestamp after the seq
    return chunk(f"id: {seq}\nevent: {event_type}\ndata: {data}\n\n".encode())
