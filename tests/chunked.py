"""HTTP/1.1 chunked transfer coding, decoded as bytes arrive (RFC 9112, section 7.1).

The clients that read streams from raw sockets (tests/clients.py's ``LightReader``, the
fault tests, the benchmark's load client) share this decoder; what it returns goes to the
SSE parser of tests/sse_parser.py. Chunk extensions are skipped; trailer fields are read
and dropped.
"""

from __future__ import annotations

__all__ = ["ChunkedDecoder", "dechunk"]


class ChunkedDecoder:
    """Feed it the bytes of a chunked body as they come; it returns the payload so far."""

    __slots__ = ("_buffer", "_remaining", "_state", "ended")

    def __init__(self) -> None:
        self._buffer = b""
        #: Payload bytes left in the current chunk, then its CRLF.
        self._remaining = 0
        self._state = "size"  # "size", "data", "data-end", "trailer"
        #: The last chunk and the trailer section have been read: the body is complete.
        self.ended = False

    def feed(self, data: bytes) -> bytes:
        buffer = self._buffer + data if self._buffer else data
        self._buffer = b""
        out: list[bytes] = []
        position = 0
        while position < len(buffer) and not self.ended:
            if self._state == "data":
                piece = buffer[position : position + self._remaining]
                out.append(piece)
                position += len(piece)
                self._remaining -= len(piece)
                if self._remaining == 0:
                    self._state = "data-end"
                continue
            end = buffer.find(b"\r\n", position)
            if end < 0:
                break  # an incomplete line: wait for the rest
            line = buffer[position:end]
            position = end + 2
            if self._state == "data-end":
                if line:
                    raise ValueError(f"a chunk does not end with CRLF: {line[:20]!r}")
                self._state = "size"
            elif self._state == "size":
                size = int(line.split(b";", 1)[0].strip() or b"x", 16)
                self._remaining, self._state = size, ("data" if size else "trailer")
            elif not line:  # the empty line that ends the trailer section
                self.ended = True
        self._buffer = buffer[position:]
        return b"".join(out)


def dechunk(body: bytes) -> bytes:
    """The payload of a whole (or truncated) chunked body."""
    return ChunkedDecoder().feed(body)
