"""The test session's PostgreSQL: ``DATABASE_URL`` if set, else an embedded server.

The embedded server lives in ``.pgdata/test`` and is stopped when the test process exits
(``cleanup_mode="stop"``). Fault tests stop and start it through :class:`Postgres`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from chatsite import embedded_db

_embedded: Any = None
_external_url = os.environ.get("DATABASE_URL", "")


def server_url() -> str:
    """Start the embedded server unless the environment names one; return its URL."""
    global _embedded
    if _external_url:
        return _external_url
    if _embedded is None:
        _embedded = embedded_db.start("test", keep_running=False)
    return str(_embedded.get_uri())


@dataclass
class Postgres:
    """What tests may do with the server: know its URL, and (embedded only) restart it."""

    url: str
    embedded: Any

    @property
    def can_restart(self) -> bool:
        return self.embedded is not None

    def stop(self, mode: str = "fast") -> None:
        embedded_db.stop(self.embedded, mode=mode)

    def start(self) -> None:
        self.embedded.ensure_postgres_running()


def handle(url: str) -> Postgres:
    return Postgres(url, _embedded)
