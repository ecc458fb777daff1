"""Stream positions: what an SSE ``id:`` says and how ``Last-Event-ID`` is read back.

A stream follows one or more channels. Its position is the last seq it delivered in each
of them. The ``id:`` of every event carries the whole position, so that a reconnect with
``Last-Event-ID`` resumes every channel exactly::

    <fingerprint>:<seq>[.<seq>...]

- ``fingerprint``: 8 hex digits identifying the stream's channel set (order-independent).
  A position from a stream over other channels does not match and is refused.
- one decimal ``seq`` per channel, channels in code-point order of their names.

Example: a stream over ``room:lobby`` alone at seq 42 has ids like ``a23e50b5:42``; over
``room:lobby`` and ``user:7`` it has ids like ``63009141:42.3``.
Parsing is pure and strict: anything else raises :class:`InvalidPosition` with the reason.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

__all__ = [
    "MAX_POSITION_LENGTH",
    "MAX_SEQ",
    "RESET_EVENT",
    "SEQ_DIGITS",
    "InvalidPosition",
    "canonical_channels",
    "fingerprint",
    "format_position",
    "parse_position",
]

#: Longest ``Last-Event-ID`` we try to read; longer values are refused unread.
MAX_POSITION_LENGTH = 1024

#: The largest seq: seqs are PostgreSQL bigints.
MAX_SEQ = 2**63 - 1
#: The most decimal digits a seq has (``MAX_SEQ`` is 9,223,372,036,854,775,807).
SEQ_DIGITS = len(str(MAX_SEQ))

_POSITION = re.compile(rf"([0-9a-f]{{8}}):([0-9]{{1,{SEQ_DIGITS}}}(?:\.[0-9]{{1,{SEQ_DIGITS}}})*)")


#: Event type a stream sends when a position cannot be resumed; publish() refuses it.
RESET_EVENT = "reset"


class InvalidPosition(ValueError):
    """A position that cannot be resumed from. ``reason`` is a short machine-readable word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def canonical_channels(channels: Iterable[str]) -> tuple[str, ...]:
    """The channel set in the order positions use: unique, sorted by code point."""
    return tuple(sorted(set(channels)))


def fingerprint(channels: tuple[str, ...]) -> str:
    """Eight hex digits naming a canonical channel set."""
    joined = "\x00".join(channels).encode()
    return hashlib.blake2b(joined, digest_size=4).hexdigest()


def format_position(channels: tuple[str, ...], seqs: Mapping[str, int]) -> str:
    """The id for canonical ``channels`` at ``seqs`` (one seq per channel)."""
    return fingerprint(channels) + ":" + ".".join(str(seqs[name]) for name in channels)


def parse_position(text: str, channels: tuple[str, ...]) -> dict[str, int]:
    """Read a position for canonical ``channels``; raise :class:`InvalidPosition` if invalid."""
    if len(text) > MAX_POSITION_LENGTH:
        raise InvalidPosition(
            "malformed", f"position is longer than {MAX_POSITION_LENGTH} characters"
        )
    match = _POSITION.fullmatch(text)
    if match is None:
        raise InvalidPosition(
            "malformed", "position must look like '<8 hex digits>:<seq>[.<seq>...]'"
        )
    if match.group(1) != fingerprint(channels):
        raise InvalidPosition("channels", "position belongs to a stream over other channels")
    seqs = [int(part) for part in match.group(2).split(".")]
    if any(seq > MAX_SEQ for seq in seqs):
        raise InvalidPosition("malformed", f"a seq is at most {MAX_SEQ}")
    if len(seqs) != len(channels):
        raise InvalidPosition(
            "malformed",
            f"a position has one seq per channel: {len(channels)} expected, {len(seqs)} given",
        )
    return dict(zip(channels, seqs, strict=True))
