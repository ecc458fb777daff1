"""psycopg connection parameters for pgsse's own connections, built from ``DATABASES``.

The hub's listener and log reader are plain ``psycopg.AsyncConnection`` objects, not
Django connections (Django closes its connections at the end of each request and has no
async driver). They must reach the same database with the same credentials, so the
parameters are read from the alias's settings dict, the way Django itself reads them.
Each also says what it is in ``application_name``, so that operators find them in
``pg_stat_activity``: ``pgsse-listener <host>:<pid>`` and ``pgsse-reader <host>:<pid>``.
"""

from __future__ import annotations

import functools
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
    cursors do only with ``OPTIONS["server_side_binding"]``, and prepares its statements.

    pgsse's appends carry the event's JSON: quoting it into the statement in Python cost
    a third of the publish rate at 32 publishers. Preparing them (PostgreSQL parses and
    plans each once per connection, not once per publish) took the rate at 32 publishers
    from about 0.6 of a plain INSERT's to 0.72 (the median of five runs, in a range of
    0.60-0.86, with a few smaller savings: docs/performance.md). Django
    leaves ``prepare_threshold`` off for transaction-mode poolers; the alias pgsse uses
    must reach PostgreSQL directly or through a session-mode pool anyway (its listener
    needs a session: docs/deployment.md), where prepared statements live. With queries
    logged (``DEBUG``, ``assertNumQueries``, the debug toolbar) they are not prepared.
    """
    import psycopg

    connection.ensure_connection()
    connection.validate_thread_sharing()
    # Queries logged (DEBUG, assertNumQueries, the debug toolbar): not prepared, since
    # Django's query log reads the SQL back from the cursor, which psycopg does not keep
    # for a prepared statement's execution.
    logged = connection.queries_logged
    with connection.wrap_database_errors:
        # (django-stubs types the wrapped cursor as Django's own: it is psycopg's.)
        cursor: Any = (psycopg.Cursor if logged else _preparing_cursor())(connection.connection)
    if logged:
        return connection.make_debug_cursor(cursor)
    return connection.make_cursor(cursor)


#: The ``prepare_threshold`` a :func:`server_bound_cursor` lends a connection that has none
#: while its statement runs: a statement is prepared the second time it runs on a
#: connection (a connection opened for one request and one publish never pays for it).
_LENT_THRESHOLD = 1


@functools.cache
def _preparing_cursor() -> type[Any]:
    """psycopg's cursor, preparing what it executes from the second time on a connection.

    psycopg prepares nothing on a connection whose ``prepare_threshold`` is None (Django's
    default): for the time of each of its statements, this cursor lends it one, so that
    Django's own queries on the connection are prepared exactly as before. What changes
    for the connection: psycopg forgets its prepared statements at each rollback, with a
    ``DEALLOCATE ALL`` (the next publishes prepare them again).

    Prepared statements that vanished behind psycopg's back (a ``DISCARD ALL`` or
    ``DEALLOCATE ALL`` run by the application through a plain cursor), or names a
    session-mode pool left over from a previous client (with no ``server_reset_query``),
    fail the statement: outside a transaction it is run again after a ``DEALLOCATE ALL``
    that puts psycopg and the server in step; inside one, the transaction has failed
    and its rollback does the same.
    """
    import psycopg
    from psycopg import errors
    from psycopg.pq import TransactionStatus

    out_of_step = (errors.InvalidSqlStatementName, errors.DuplicatePreparedStatement)

    class PreparingCursor(psycopg.Cursor[Any]):
        def execute(
            self, query: Any, params: Any = None, *, prepare: bool | None = None, **kwargs: Any
        ) -> PreparingCursor:
            try:
                self._lending(query, params, prepare=prepare, **kwargs)
            except out_of_step:
                if self.connection.info.transaction_status != TransactionStatus.IDLE:
                    raise
                # Through this cursor psycopg sees the command and forgets its names too.
                self._lending("DEALLOCATE ALL", prepare=False)
                self._lending(query, params, prepare=prepare, **kwargs)
            return self

        def _lending(self, query: Any, params: Any = None, **kwargs: Any) -> None:
            connection = self.connection
            lent = connection.prepare_threshold is None
            if lent:
                connection.prepare_threshold = _LENT_THRESHOLD
            try:
                super().execute(query, params, **kwargs)
            finally:
                if lent:
                    connection.prepare_threshold = None

    return PreparingCursor
