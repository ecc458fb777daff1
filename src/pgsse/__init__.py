"""Server-Sent Events for Django, fed by PostgreSQL LISTEN/NOTIFY and a durable event log.

Public API: :func:`publish`, :func:`apublish`, :func:`current_position` (page-load position) and
:class:`pgsse.views.StreamView` (also ``pgsse.views.stream``).
"""

from __future__ import annotations

from pgsse.channels import InvalidChannel
from pgsse.position import InvalidPosition
from pgsse.publish import InvalidEvent, apublish, publish
from pgsse.resume import acurrent_position, current_position

__all__ = [
    "InvalidChannel",
    "InvalidEvent",
    "InvalidPosition",
    "acurrent_position",
    "apublish",
    "current_position",
    "publish",
]

__version__ = "0.1.0"
