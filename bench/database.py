"""The PostgreSQL the benchmarks run on: the embedded one (``.pgdata/bench``) or ``DATABASE_URL``.

A fresh database ``pgsse_bench`` is created and migrated for every run and dropped at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from tests.processes import PYTHONPATH, REPOSITORY

DATABASE_NAME = "pgsse_bench"
_DROP = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE_NAME))
#: The peers' own settings, migrated into the same database (django-eventstream's tables).
PEER_SETTINGS = ("bench.eventstream_site.settings",)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


class BenchDatabase:
    """Start (or reach) the server, create and migrate the bench database, drop it at the end."""

    def __init__(self) -> None:
        self._embedded: Any = None
        self.server_url = os.environ.get("DATABASE_URL", "")
        self.description = "DATABASE_URL"
        self.url = ""

    def start(self, peers: bool = True) -> BenchDatabase:
        """``peers``: migrate the peers' tables too (they need the ``bench`` group)."""
        if not self.server_url:
            sys.path.insert(0, str(REPOSITORY / "demo"))
            from chatsite import embedded_db

            self._embedded = embedded_db.start("bench", keep_running=False)
            self.server_url = str(self._embedded.get_uri())
            self.description = "embedded PostgreSQL (.pgdata/bench)"
        self.url = _with_database(self.server_url, DATABASE_NAME)
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(_DROP)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
        for settings in ("tests.settings", *(PEER_SETTINGS if peers else ())):
            subprocess.run(
                [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
                cwd=REPOSITORY,
                env=self.environment(DJANGO_SETTINGS_MODULE=settings),
                check=True,
            )
        return self

    def environment(self, **extra: str) -> dict[str, str]:
        """Environment of a process using the bench database through the test settings."""
        return {
            **os.environ,
            "DATABASE_URL": self.url,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "TEST_ROOT_URLCONF": "tests.urls",
            "PYTHONPATH": PYTHONPATH,
            **extra,
        }

    def drop(self) -> None:
        if not self.url:
            return
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(_DROP)

    def backends(self, but_pgsses: bool = False) -> int:
        """Client connections to the bench database, not counting the one asking
        (``but_pgsses``: nor pgsse's own, which say so in ``application_name``).

        -1 when PostgreSQL refuses the question's own connection (a server under test
        took every slot, reserved ones included: they all connect as the same superuser).
        """
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                    " AND NOT (%s AND application_name LIKE 'pgsse-%%')",
                    (but_pgsses,),
                ).fetchone()
        except psycopg.OperationalError:
            return -1
        assert row is not None
        return int(row[0])

    def execute(self, statement: str | sql.Composed) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(statement)

    def table_reads(self, table: str) -> int:
        """Scans (sequential and index) of ``table`` so far, as PostgreSQL's statistics say.

        Backends flush their counters at the end of a transaction at most once a second,
        and an idle one after 10 s: read this after such a pause.
        """
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0)"
                " FROM pg_stat_user_tables WHERE relname = %s",
                (table,),
            ).fetchone()
        return int(row[0]) if row else 0

    def connection_budget(self) -> tuple[int, int]:
        """``(max_connections, connections an ordinary role may still open)``."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            settings: dict[str, int] = dict(
                conn.execute(
                    "SELECT name, setting::int FROM pg_settings WHERE name IN"
                    " ('max_connections', 'superuser_reserved_connections',"
                    " 'reserved_connections')"
                ).fetchall()
            )
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            ).fetchone()
        assert row is not None
        reserved = settings.get("superuser_reserved_connections", 3)
        reserved += settings.get("reserved_connections", 0)
        maximum = settings["max_connections"]
        return maximum, maximum - reserved - int(row[0])

    def server_version(self) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        assert row is not None
        return str(row[0])
