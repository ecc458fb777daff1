"""Logical channel names and the PostgreSQL channel names they map to.

A logical channel is what application code names: ``"room:lobby"``, ``"user:42"``,
``"room:été-2026"``. Any Unicode text of 1 to :data:`MAX_CHANNEL_LENGTH` characters is
accepted, except control characters and whitespace (Unicode categories Cc, Cs and Z*).

PostgreSQL channel names are identifiers of at most 63 bytes, compared case-sensitively
by ``pg_notify()`` and case-folded by an unquoted ``LISTEN``. We never rely on either:
every logical name is hashed into ``pgsse_`` plus 32 lowercase hex digits, which is
deterministic, fits in 38 bytes, and is identical in every process and every host.
The notification payload repeats the logical name, so a hash collision cannot mix channels.

Names starting with ``pgsse:`` are pgsse's own (requests to close streams travel on
``pgsse:control``): applications can neither publish to them nor stream them.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata

__all__ = [
    "MAX_CHANNEL_LENGTH",
    "RESERVED_PREFIX",
    "ChannelPurged",
    "InvalidChannel",
    "pg_channel_name",
    "validate_channel",
]

#: Longest logical channel name, in characters.
MAX_CHANNEL_LENGTH = 200

#: Channel names that belong to pgsse itself.
RESERVED_PREFIX = "pgsse:"

_PG_PREFIX = "pgsse_"


class InvalidChannel(ValueError):
    """A logical channel name that pgsse does not accept; the message says why."""


class ChannelPurged(InvalidChannel):
    """The channel was purged (``pgsse.purge_channel()``): its name is never used again."""

    def __init__(self, channel: str) -> None:
        super().__init__(
            f"channel {channel!r} was purged: its name is never published to again"
            " (name channels after something that is never reused, such as a primary key)"
        )
        self.channel = channel


def validate_channel(name: object, *, internal: bool = False) -> str:
    """Return ``name`` if it is a valid logical channel name, else raise :class:`InvalidChannel`.

    Names under :data:`RESERVED_PREFIX` are refused unless ``internal`` (pgsse's own use).
    """
    if not isinstance(name, str):
        raise InvalidChannel(f"channel name must be a string, not {type(name).__name__}")
    return _valid(name, internal)


# Every publish checks its channel, character by character: the names a process uses
# again and again are checked once (an invalid name raises, and is never cached).
@functools.lru_cache(maxsize=4096)
def _valid(name: str, internal: bool) -> str:
    if not name:
        raise InvalidChannel("channel name must not be empty")
    if len(name) > MAX_CHANNEL_LENGTH:
        raise InvalidChannel(
            f"channel name is {len(name)} characters long; the limit is {MAX_CHANNEL_LENGTH}"
        )
    for char in name:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs") or category[0] == "Z":
            raise InvalidChannel(
                f"channel name must not contain whitespace or control characters ({char!r})"
            )
    if not internal and name.startswith(RESERVED_PREFIX):
        raise InvalidChannel(f"channel names starting with {RESERVED_PREFIX!r} are pgsse's own")
    return name


@functools.lru_cache(maxsize=4096)
def pg_channel_name(name: str) -> str:
    """The PostgreSQL channel that carries logical channel ``name``."""
    digest = hashlib.blake2b(validate_channel(name, internal=True).encode(), digest_size=16)
    return _PG_PREFIX + digest.hexdigest()
