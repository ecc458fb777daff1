"""System checks fail loudly, with what to do, on setups pgsse cannot work in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings

from tests.servers import REPOSITORY


def pgsse_ids() -> list[str]:
    return sorted(m.id for m in run_checks() if m.id and m.id.startswith("pgsse."))


def test_the_test_settings_pass() -> None:
    assert pgsse_ids() == []


def test_unknown_setting_is_an_error() -> None:
    with override_settings(PGSSE={"HEARTBEAT": 5}):
        assert pgsse_ids() == ["pgsse.E004"]


def test_database_alias_must_exist() -> None:
    with override_settings(PGSSE={"DATABASE": "elsewhere"}):
        assert pgsse_ids() == ["pgsse.E001"]


def test_asgi_application_is_required() -> None:
    with override_settings(ASGI_APPLICATION=None):
        (message,) = [m for m in run_checks() if m.id == "pgsse.E002"]
    assert "ASGI_APPLICATION" in message.msg
    assert "uvicorn" in str(message.hint)


def test_gzip_middleware_is_flagged() -> None:
    middleware = ["django.middleware.gzip.GZipMiddleware", *settings.MIDDLEWARE]
    with override_settings(MIDDLEWARE=middleware):
        assert pgsse_ids() == ["pgsse.W003"]


def test_a_database_other_than_postgresql_fails_check(tmp_path: Path) -> None:
    (tmp_path / "sqlite_settings.py").write_text(
        "SECRET_KEY = 'x'\n"
        "INSTALLED_APPS = ['django.contrib.contenttypes', 'django.contrib.auth', 'pgsse']\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': ':memory:'}}\n"
        "ASGI_APPLICATION = 'x.asgi.application'\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--settings=sqlite_settings"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": f"{tmp_path}:{REPOSITORY / 'src'}", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "pgsse.E001" in result.stderr
    assert "pgsse needs PostgreSQL" in result.stderr


@pytest.mark.parametrize(
    "pgsse",
    [
        {"RETENTION": {"": {"max_days": 3}}},
        {"HEARTBEAT_INTERVAL": 0},
        {"MAX_BUFFERED_EVENTS": -1},
        {"RETRY_MS": "soon"},
    ],
)
def test_invalid_values_are_errors(pgsse: dict[str, object]) -> None:
    with override_settings(PGSSE=pgsse):
        assert pgsse_ids() == ["pgsse.E004"]


@pytest.mark.parametrize(
    "pgsse",
    [
        {"PRUNE_INTERVAL": -1},
        {"MAX_STREAMS_PER_USER": 0},
        {"AUTHORIZE": "myproject.nowhere.allow"},
    ],
)
def test_more_invalid_values_are_errors(pgsse: dict[str, object]) -> None:
    with override_settings(PGSSE=pgsse):
        assert pgsse_ids() == ["pgsse.E004"]
