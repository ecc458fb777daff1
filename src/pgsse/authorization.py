"""Ready-made hooks for ``StreamView``: who may read which channel.

pgsse denies by default: a ``StreamView`` with no ``authorize`` hook, in a project without
``PGSSE["AUTHORIZE"]``, refuses every stream (and ``manage.py check`` says so). These cover
the common cases; anything else is a function of your own, ``(request, channel) -> bool``,
sync (it may use the ORM) or async.

The per-user case: each user follows their own channel, ``user:<pk>``::

    from pgsse.authorization import own_channel, only_own_channel, user_channel

    path("me/events/", StreamView.as_view(channels=own_channel, authorize=only_own_channel))

    pgsse.publish(user_channel(request.user), "notice", {"text": "Welcome back"})
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

__all__ = ["allow_authenticated", "only_own_channel", "own_channel", "user_channel"]


def user_channel(user: Any) -> str:
    """The channel of one user: ``user:<pk>`` (a user object or a primary key)."""
    return f"user:{getattr(user, 'pk', user)}"


def _user(request: HttpRequest) -> Any:
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def own_channel(request: HttpRequest) -> list[str]:
    """``channels`` hook: the logged-in user's own channel (403 for anonymous visitors)."""
    user = _user(request)
    if user is None:
        raise PermissionDenied("Log in to follow your own events.")
    return [user_channel(user)]


def only_own_channel(request: HttpRequest, channel: str) -> bool:
    """``authorize`` hook: a logged-in user may read their own channel, and nothing else."""
    user = _user(request)
    return user is not None and channel == user_channel(user)


def allow_authenticated(request: HttpRequest, channel: str) -> bool:
    """``authorize`` hook: any logged-in user may read any channel. Only for channels that
    every user may see (a public announcements channel, say): never for per-user data."""
    return _user(request) is not None
