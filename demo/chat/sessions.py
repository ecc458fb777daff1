"""The chat's session engine (``SESSION_ENGINE = "chat.sessions"``): Django's database
sessions, whose row is read with one plain statement instead of a query built by the ORM.

Every request with a session cookie reads its row: every page, API call and stream open.
Built by the ORM, that read cost about 400 µs of CPU on the benchmark's machine, five
times the statement itself, and was the largest part of opening the chat's stream. The
row, the table and the test are Django's (a key that names no row, or only an expired
one, is no session); everything else (saving, cycling the key, log-out's deletion,
expiry) is Django's own code, so a session ended anywhere is refused on the next request,
on every process: nothing is cached.

Sessions logged in before the chat had its own backend (chat.backends) name Django's
``ModelBackend``: they are read as naming the chat's, which reads the same users with the
same checks, so that nobody is logged out by the change.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone

from chat.backends import ACCOUNT_BACKEND, DJANGO_MODEL_BACKEND

#: The row of a session key, unless expired (``django.contrib.sessions.models.Session``,
#: whose table Django names ``django_session``).
_READ = "SELECT session_data FROM django_session WHERE session_key = %s AND expire_date > %s"


class SessionStore(db.SessionStore):
    def load(self) -> dict[str, Any]:
        return _current(super().load())

    async def aload(self) -> dict[str, Any]:
        return _current(await super().aload())

    def _get_session_from_db(self) -> Any:
        model, key = self.model, self.session_key
        row = None
        if key is not None:
            with connections[router.db_for_read(model)].cursor() as cursor:
                cursor.execute(_READ, [key, timezone.now()])
                row = cursor.fetchone()
        if key is None or row is None:
            self._session_key = None  # as Django does: a new session gets a new key
            return None
        return model(session_key=key, session_data=row[0])

    async def _aget_session_from_db(self) -> Any:
        return await sync_to_async(self._get_session_from_db)()


def _current(data: dict[str, Any]) -> dict[str, Any]:
    if data.get(BACKEND_SESSION_KEY) == DJANGO_MODEL_BACKEND:
        data[BACKEND_SESSION_KEY] = ACCOUNT_BACKEND
    return data
