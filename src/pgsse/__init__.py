"""Server-Sent Events for Django, fed by PostgreSQL LISTEN/NOTIFY and a durable event log.

Public API: :func:`publish`, :func:`publish_many` (several channels in one transaction), their
async twins :func:`apublish` and :func:`apublish_many`, :func:`current_position` (page-load
position), :class:`pgsse.views.StreamView` (also ``pgsse.views.stream``), and
``pgsse.testing`` for your tests.
"""

from __future__ import annotations

from pgsse.channels import InvalidChannel
from pgsse.position import InvalidPosition
from pgsse.publish import InvalidEvent, apublish, apublish_many, publish, publish_many
from pgsse.resume import acurrent_position, current_position

__all__ = [
    "InvalidChannel",
    "InvalidEvent",
    "InvalidPosition",
    "acurrent_position",
    "apublish",
    "apublish_many",
    "current_position",
    "publish",
    "publish_many",
]

__version__ = "0.1.0"
