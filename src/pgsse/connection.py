"""psycopg connection parameters for pgsse's own connections, built from ``DATABASES``.

The hub's listener and log reader are plain ``psycopg.AsyncConnection`` objects, not
Django connections (Django closes its connections at the end of each request and has no
async driver). They must reach the same database with the same credentials, so the
parameters are read from the alias's settings dict, the way Django itself reads them.
Each also says what it is in ``application_name``, so that operators find them in
``pg_stat_activity``: ``pgsse-listener <host>:<pid>`` and ``pgsse-reader <host>:<pid>``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.utils.asyncio import async_unsafe

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper

__all__ = ["TCP_KEEPALIVE", "connection_kwargs", "identify", "server_bound_cursor"]

# OPTIONS keys that Django's PostgreSQL backend consumes itself; the rest are libpq's.
_DJANGO_ONLY_OPTIONS = frozenset(
    {"assume_role", "isolation_level", "pool", "server_side_binding", "cursor_factory"}
)

#: libpq's TCP keepalive for pgsse's long-lived connections: the kernel notices a peer that
#: vanished without a word (libpq ignores these on Unix sockets).
TCP_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms: data left unacknowledged this long fails the socket
}

#: PostgreSQL keeps the first 63 bytes of an application_name.
_NAME_BYTES = 63


def connection_kwargs(settings_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``psycopg.connect()`` equivalent to a ``DATABASES`` entry."""
    options = dict(settings_dict.get("OPTIONS") or {})
    kwargs = {key: value for key, value in options.items() if key not in _DJANGO_ONLY_OPTIONS}
    for setting, keyword in (
        ("NAME", "dbname"),
        ("USER", "user"),
        ("PASSWORD", "password"),
        ("HOST", "host"),
        ("PORT", "port"),
    ):
        value = settings_dict.get(setting)
        if value:
            kwargs[keyword] = str(value)
    if "dbname" not in kwargs and "service" not in kwargs:
        kwargs["dbname"] = "postgres"
    return kwargs


def identify(role: str) -> dict[str, str]:
    """The ``application_name`` of a pgsse connection playing ``role`` in this process."""
    suffix = f":{os.getpid()}"
    name = f"pgsse-{role} {socket.gethostname()}"
    while len((name + suffix).encode()) > _NAME_BYTES:
        name = name[:-1]
    return {"application_name": name + suffix}


@async_unsafe
def server_bound_cursor(connection: BaseDatabaseWrapper) -> CursorWrapper:
    """A cursor on Django's ``connection`` (its transaction, its wrappers and query log)
    that sends parameters apart from the SQL (server-side binding), as Django's own
    cursors do only with ``OPTIONS["server_side_binding"]``.

    pgsse's appends carry the event's JSON: quoting it into the statement in Python cost
    a third of the publish rate at 32 publishers. The statements are prepared if the
    connection's ``prepare_threshold`` asks for it (Django leaves it off, for poolers).
    """
    import psycopg

    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        # (django-stubs types the wrapped cursor as Django's own: it is psycopg's.)
        cursor: Any = psycopg.Cursor(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(cursor)
    return connection.make_cursor(cursor)
