"""A sliding-window rate limit kept in PostgreSQL, so every worker and host shares it.

Each counted action is a row; a transaction-scoped advisory lock on the key makes
count-then-insert atomic across processes. Rows older than the window are deleted as the
key is used, so a key holds at most ``limit`` rows.

Every write is limited twice: per user and per client address (so that new accounts do
not buy new allowances); the limits per action are in :mod:`chat.conf`.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest
from django.template.defaultfilters import pluralize
from django.utils import timezone

from chat import conf
from chat.models import RateHit


def hit(key: str, limit: int, period: float) -> float | None:
    """Count one action for ``key``; None if allowed, else the seconds until it would be.

    Call it inside the transaction that does the action: if the action rolls back, so
    does its hit.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])
        now = timezone.now()
        start = now - timedelta(seconds=period)
        RateHit.objects.filter(key=key, at__lte=start).delete()
        hits = list(RateHit.objects.filter(key=key).order_by("at").values_list("at", flat=True))
        if len(hits) >= limit:
            return max(0.0, (hits[-limit] - start).total_seconds())
        RateHit.objects.create(key=key, at=now)
        return None


class RateLimited(Exception):
    """An action over its limit; ``retry_after`` is in whole seconds (at least 1)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


WHAT = {
    "message": "messages",
    "edit": "edits",
    "reaction": "reactions",
    "search": "searches",
    "room": "new rooms",
    "presence": "presence updates",
    "typing": "typing notices",
    "read": "read marks",
    "membership": "joins, leaves and invitations",
    "removal": "removals of members",
    "direct": "direct conversations started",
    "settings": "changes of room settings",
    "profile": "profile changes",
    "signup": "new accounts from your address",
    "password_reset": "password-reset e-mails from your address",
    "note": "notes from your address",
    "upload": "files",
}


def client_address(request: HttpRequest) -> str:
    """The client's address as the server sees it (behind a proxy, run the server with
    its proxy-headers option so that this is the client's, not the proxy's)."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def check(action: str, request: HttpRequest, user: Any = None, scope: str = "") -> None:
    """Count one ``action`` for ``user`` (and ``scope``, a room say) and for the client's
    address; raise :class:`RateLimited` if either is over its limit (see ``conf``).

    Call it inside the transaction that does the action, so that a refused or failed
    action is not counted.
    """
    per_user, per_address, period = conf.rate_limit(action)
    keys = []
    if per_user is not None and user is not None and user.is_authenticated:
        keys.append((f"{action}:user:{user.pk}:{scope}", per_user))
    if per_address is not None:
        keys.append((f"{action}:address:{client_address(request)}", per_address))
    for key, limit in keys:
        wait = hit(key, limit, period)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise RateLimited(
                f"Too many {WHAT[action]}: at most {limit} every {period:g}"
                f" second{pluralize(period)}. "
                f"Try again in {seconds} s.",
                seconds,
            )
