"""The page-load position: render it into a page, open the stream from it, lose nothing.

A page that renders a channel's history and then opens a stream would miss every event
committed between the two. Read the position *before* reading what the page shows, put
it in the page, and open the stream with ``?last_event_id=<position>``: the stream replays
everything after it. (An event committed in between may then be both rendered and
replayed; give events an identity the page can recognise, as the chat does with message
ids.)
"""

from __future__ import annotations

from collections.abc import Iterable

from asgiref.sync import sync_to_async

from pgsse import log
from pgsse.channels import InvalidChannel, validate_channel
from pgsse.conf import get_settings
from pgsse.position import canonical_channels, format_position

__all__ = ["acurrent_position", "current_position"]


def current_position(channels: Iterable[str]) -> str:
    """The position of a stream over ``channels`` that has seen everything committed so far."""
    names = canonical_channels(validate_channel(name) for name in channels)
    if not names:
        raise InvalidChannel("a position needs at least one channel")
    heads = log.read_heads_sync(names, get_settings().DATABASE)
    return format_position(names, {name: head.last_seq for name, head in heads.items()})


async def acurrent_position(channels: Iterable[str]) -> str:
    """:func:`current_position` for async code."""
    return await sync_to_async(current_position)(list(channels))
