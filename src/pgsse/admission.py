"""Admission control: how many streams a process, and one user, may have open.

A stream over a cap is refused before it starts, so the streams already open are never
disturbed: 503 when the process is full (``MAX_STREAMS``), 429 when the user has
``MAX_STREAMS_PER_USER`` open here. Both come with ``Retry-After``; the 503's is spread
over a range so that refused clients do not all come back in the same second.

A place is counted from admission until the stream ends; the check and the count are one
step under a lock (request phases run in threads): concurrent requests cannot all pass.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from django.template.defaultfilters import pluralize

from pgsse import jitter
from pgsse.conf import PgsseSettings
from pgsse.stats import Counters

__all__ = ["Admission", "Place", "Refusal"]

logger = logging.getLogger("pgsse.admission")


@dataclass(frozen=True)
class Refusal:
    """Why a stream may not open now, and when to try again."""

    status: int
    reason: str
    message: str
    retry_after: int


class Place:
    """One admitted stream's place; :meth:`release` gives it back (idempotent)."""

    __slots__ = ("_admission", "client")

    def __init__(self, admission: Admission, client: str) -> None:
        self._admission: Admission | None = admission
        self.client = client

    def release(self) -> None:
        admission, self._admission = self._admission, None
        if admission is not None:
            admission._release(self.client)


class Admission:
    """Counts of open streams, in all and per client (``user:<pk>``; "" is anonymous)."""

    def __init__(self, settings: Callable[[], PgsseSettings], counters: Counters) -> None:
        #: Read at each admission: ``override_settings`` in a test applies at once.
        self._settings = settings
        self._counters = counters
        self.open = 0
        self.by_client: Counter[str] = Counter()
        self._lock = threading.Lock()

    def admit(self, client: str) -> Place | Refusal:
        """A place for one more stream of ``client``, or why there is none."""
        with self._lock:
            return self._admit(client)

    def _admit(self, client: str) -> Place | Refusal:
        settings = self._settings()
        base = max(1, round(settings.RETRY_MS / 1000))
        if settings.MAX_STREAMS is not None and self.open >= settings.MAX_STREAMS:
            return self._refuse(
                Refusal(
                    503,
                    "process_full",
                    f"This server holds {self.open} stream{pluralize(self.open)}, its limit;"
                    " retry later.",
                    jitter.randint(base, 3 * base),
                ),
                client,
            )
        limit = settings.MAX_STREAMS_PER_USER
        if client and limit is not None and self.by_client[client] >= limit:
            return self._refuse(
                Refusal(
                    429,
                    "user_limit",
                    f"You already have {limit} stream{pluralize(limit)} open; close one and retry.",
                    base,
                ),
                client,
            )
        self.open += 1
        if client:
            self.by_client[client] += 1
        return Place(self, client)

    def _refuse(self, refusal: Refusal, client: str) -> Refusal:
        self._counters.streams_refused[refusal.reason] += 1
        logger.warning(
            "stream refused: %s",
            refusal.reason,
            extra={"reason": refusal.reason, "client": client, "open_streams": self.open},
        )
        return refusal

    def _release(self, client: str) -> None:
        with self._lock:
            self._give_back(client)

    def _give_back(self, client: str) -> None:
        self.open -= 1
        if client:
            self.by_client[client] -= 1
            if not self.by_client[client]:
                del self.by_client[client]
