"""Server-Sent Events for Django, fed by PostgreSQL LISTEN/NOTIFY and a durable event log.

Public API: :func:`publish`, :func:`apublish`, :func:`close_streams`,
:func:`aclose_streams`, :func:`current_position` (page-load position),
:class:`pgsse.views.StreamView`, the hooks in :mod:`pgsse.authorization`,
:func:`pgsse.asgi.wrap` and :class:`HubStats`.
"""

from __future__ import annotations

from pgsse.channels import InvalidChannel
from pgsse.closing import aclose_streams, close_streams
from pgsse.position import InvalidPosition
from pgsse.publish import InvalidEvent, apublish, publish
from pgsse.resume import acurrent_position, current_position
from pgsse.stats import HubStats

__all__ = [
    "HubStats",
    "InvalidChannel",
    "InvalidEvent",
    "InvalidPosition",
    "aclose_streams",
    "acurrent_position",
    "apublish",
    "close_streams",
    "current_position",
    "publish",
]

__version__ = "0.1.0"
