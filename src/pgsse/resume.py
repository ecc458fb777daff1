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
from pgsse.position import canonical_channels, format_position, parse_position

__all__ = ["acarry_position", "acurrent_position", "carry_position", "current_position"]


def current_position(channels: Iterable[str]) -> str:
    """The position of a stream over ``channels`` that has seen everything committed so far."""
    names = _channel_set(channels)
    heads = log.read_heads_sync(names, get_settings().DATABASE)
    return format_position(names, {name: head.last_seq for name, head in heads.items()})


def carry_position(position: str, from_channels: Iterable[str], to_channels: Iterable[str]) -> str:
    """The position of a stream over ``to_channels`` that goes on from ``position``, the
    position of a stream over ``from_channels``: the channels in both keep their seqs, the
    new ones start from what is committed now (as :func:`current_position` would).

    For a page whose set of channels changes while it is open (a room joined, one left):
    read the new channels' state with the new position, then reopen the stream from it;
    nothing of the channels it kept is lost or sent twice. Raises
    :class:`~pgsse.InvalidPosition` if ``position`` is not one of ``from_channels``.
    """
    old = _channel_set(from_channels)
    seqs = parse_position(position, old)
    new = _channel_set(to_channels)
    added = [name for name in new if name not in seqs]
    if added:
        heads = log.read_heads_sync(added, get_settings().DATABASE)
        seqs.update({name: head.last_seq for name, head in heads.items()})
    return format_position(new, seqs)


def _channel_set(channels: Iterable[str]) -> tuple[str, ...]:
    names = canonical_channels(validate_channel(name) for name in channels)
    if not names:
        raise InvalidChannel("a position needs at least one channel")
    return names


async def acurrent_position(channels: Iterable[str]) -> str:
    """:func:`current_position` for async code."""
    return await sync_to_async(current_position)(list(channels))


async def acarry_position(
    position: str, from_channels: Iterable[str], to_channels: Iterable[str]
) -> str:
    """:func:`carry_position` for async code."""
    return await sync_to_async(carry_position)(position, list(from_channels), list(to_channels))
