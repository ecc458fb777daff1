"""Closing streams on purpose: ``close_streams(user=..., channel=...)``, on every process.

What was true when a stream opened may stop being true: a member leaves a private room, a
user logs out, an admin removes someone. ``close_streams()`` ends the matching open
streams everywhere with a ``retry:`` hint; their reconnect goes through authorization
afresh (and is refused if access is gone).

A request to close travels through PostgreSQL as events do: it is an event of the reserved
channel ``pgsse:control``, appended to the log in the caller's transaction. It takes effect
when that transaction commits (call it in the transaction that revokes the access), and it
reaches every hub on every host; one whose listener was down applies it when it catches
up. A stream whose authorization ran just before the revocation committed, but which had
not joined its hub yet, is closed too (the hub remembers recent requests).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async

from pgsse.channels import validate_channel
from pgsse.conf import require_installed
from pgsse.publish import append

if TYPE_CHECKING:
    from pgsse.subscription import Subscription

__all__ = ["CONTROL_CHANNEL", "CloseRequest", "aclose_streams", "close_streams", "user_key"]

#: The reserved channel that carries close requests.
CONTROL_CHANNEL = "pgsse:control"
CLOSE_EVENT = "close"


def user_key(user: Any) -> str:
    """Who a stream counts against: ``user:<pk>`` for a user (or a user's pk)."""
    pk = getattr(user, "pk", user)
    if pk is None or isinstance(pk, bool) or not isinstance(pk, int | str):
        raise TypeError(f"expected a saved user or a user's primary key, not {user!r}")
    return f"user:{pk}"


@dataclass(frozen=True)
class CloseRequest:
    """Close the streams of ``client`` (``user:<pk>``), of ``channel``, or of both at once."""

    client: str | None
    channel: str | None

    def matches(self, subscription: Subscription) -> bool:
        if self.client is not None and subscription.client != self.client:
            return False
        return self.channel is None or self.channel in subscription.channels

    def to_json(self) -> str:
        return json.dumps({"client": self.client, "channel": self.channel}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> CloseRequest:
        data = json.loads(text)
        client, channel = data["client"], data["channel"]
        if not isinstance(client, str | None) or not isinstance(channel, str | None):
            raise TypeError("client and channel must be strings or null")
        if client is None and channel is None:
            raise ValueError("a close request names a user, a channel, or both")
        return cls(client, channel)


def close_streams(*, user: Any = None, channel: str | None = None) -> None:
    """End the open streams of ``user`` (a user or its pk), of ``channel``, or of the user
    on that channel, in every process, with a ``retry:`` hint. At least one is required.

    Joins the caller's transaction (on ``PGSSE["DATABASE"]``): the streams end when it
    commits, and not at all if it rolls back. Like any publish it takes no lock before
    the commit, so it may be called anywhere in the transaction.
    """
    if user is None and channel is None:
        raise TypeError("close_streams() needs user=, channel=, or both")
    request = CloseRequest(
        user_key(user) if user is not None else None,
        validate_channel(channel) if channel is not None else None,
    )
    require_installed()
    append([(CONTROL_CHANNEL, CLOSE_EVENT, request.to_json(), None)], internal=True)


async def aclose_streams(*, user: Any = None, channel: str | None = None) -> None:
    """:func:`close_streams` for async code."""
    await sync_to_async(close_streams)(user=user, channel=channel)
