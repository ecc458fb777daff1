"""Transactions that collide: retried, then answered "busy", never "database unreachable".

PostgreSQL ends one of two transactions that wait for each other (a deadlock, SQLSTATE
40P01) or whose concurrent changes cannot both stand (a serialization failure, 40001):
the transaction rolled back whole, nothing of it was saved, and running it again is the
expected answer. A view decorated with :func:`retrying` runs again, up to
``CHAT_CONFLICT_ATTEMPTS`` times in all, after a short random pause (so that the two do
not collide again in step); past that the conflict propagates, and :func:`busy_message`
says what happened.

Only a request's own transactions are retried: a view called inside an outer
``atomic()`` is not (the outer transaction is aborted; its owner must decide).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponseBase

from chat import conf

logger = logging.getLogger("chat.conflicts")

#: The SQLSTATEs of transactions PostgreSQL ended for colliding with others.
CONFLICTS = {"40P01": "a deadlock", "40001": "a serialization failure"}
#: Seconds of the pause before a retry, at random up to this times the attempt's number.
PAUSE = 0.05
#: What a client is told to wait before trying again, in seconds.
RETRY_AFTER = 1


def conflict_of(exc: BaseException) -> str | None:
    """What kind of collision ended the transaction that raised ``exc``, or None.

    Django wraps the driver's error (``django.db.OperationalError``, its ``__cause__``
    psycopg's ``DeadlockDetected`` or ``SerializationFailure``, which carry the SQLSTATE).
    """
    seen: BaseException | None = exc
    while seen is not None:
        state = getattr(seen, "sqlstate", None)
        if state in CONFLICTS:
            return CONFLICTS[state]
        seen = seen.__cause__
    return None


def busy_message(kind: str) -> str:
    return (
        f"The server is busy: this change collided with others made at the same moment "
        f"({kind}) and was not saved. Try again."
    )


Response = TypeVar("Response", bound=HttpResponseBase)


def retrying(view: Callable[..., Response]) -> Callable[..., Response]:
    """Run ``view`` again when PostgreSQL ended its transaction for colliding with another."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Response:
        attempts = max(1, int(conf.get("CHAT_CONFLICT_ATTEMPTS")))
        attempt = 1
        while True:
            try:
                return view(request, *args, **kwargs)
            except DatabaseError as exc:
                kind = conflict_of(exc)
                if kind is None or attempt >= attempts or connection.in_atomic_block:
                    raise
                logger.warning(
                    "%s %s: %s (attempt %d of %d), running it again",
                    request.method,
                    request.path,
                    kind,
                    attempt,
                    attempts,
                )
            time.sleep(random.uniform(0, PAUSE * attempt))
            attempt += 1

    return wrapped
