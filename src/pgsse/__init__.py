"""Server-Sent Events for Django, fed by PostgreSQL LISTEN/NOTIFY and a durable event log.

Public API: :func:`publish`, :func:`publish_many` (several channels in one transaction), their
async twins :func:`apublish` and :func:`apublish_many`, :func:`close_streams` and
:func:`aclose_streams`, :func:`redact` and :func:`purge_channel` (a log that forgets) and
their twins, :func:`current_position` (page-load position), :func:`carry_position` (a stream whose
channels change),
:class:`pgsse.views.StreamView`, the hooks in :mod:`pgsse.authorization`,
:func:`pgsse.asgi.wrap`, :class:`HubStats`, and ``pgsse.testing`` for your tests.
"""

from __future__ import annotations

from pgsse.channels import ChannelPurged, InvalidChannel
from pgsse.closing import aclose_streams, close_streams
from pgsse.forget import apurge_channel, aredact, purge_channel, redact
from pgsse.position import InvalidPosition
from pgsse.publish import InvalidEvent, apublish, apublish_many, publish, publish_many
from pgsse.resume import acarry_position, acurrent_position, carry_position, current_position
from pgsse.stats import HubStats

__all__ = [
    "ChannelPurged",
    "HubStats",
    "InvalidChannel",
    "InvalidEvent",
    "InvalidPosition",
    "acarry_position",
    "aclose_streams",
    "acurrent_position",
    "apublish",
    "apublish_many",
    "apurge_channel",
    "aredact",
    "carry_position",
    "close_streams",
    "current_position",
    "publish",
    "publish_many",
    "purge_channel",
    "redact",
]

__version__ = "0.1.0"
