"""A sliding-window rate limit kept in PostgreSQL, so every worker and host shares it.

Each counted action is a row; a transaction-scoped advisory lock on the key makes
count-then-insert atomic across processes. Rows older than the window are deleted as the
key is used, so a key holds at most ``limit`` rows.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

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
