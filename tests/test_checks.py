"""System checks fail loudly, with what to do, on setups pgsse cannot work in."""

from __future__ import annotations

import re
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
    assert "pgsse.E005" in result.stderr
    assert "pgsse needs PostgreSQL" in result.stderr


@pytest.mark.parametrize(
    ("pgsse", "says"),
    [
        ({"RETENTION": {"": {"max_days": 3}}}, "unknown keys ['max_days']"),
        ({"HEARTBEAT_INTERVAL": 0}, "'HEARTBEAT_INTERVAL'] must be a number > 0, not 0"),
        ({"MAX_BUFFERED_EVENTS": 1000}, "was replaced by MAX_BUFFERED_BYTES"),
        ({"RETRY_MS": "soon"}, "'RETRY_MS'] must be an integer >= 0, not 'soon'"),
        ({"PRUNE_INTERVAL": -1}, "must be a number > 0 or None, not -1"),
        ({"MAX_STREAMS_PER_USER": 0}, "must be an integer > 0 or None, not 0"),
        ({"RETENTION": [("", {})]}, "'RETENTION'] must be a dict of channel-name prefixes"),
        ({"RETRY_MS": True}, "'RETRY_MS'] must be an integer >= 0, not True"),
        ({"SETUP_CONCURRENCY": 2.5}, "'SETUP_CONCURRENCY'] must be an integer > 0, not 2.5"),
        ({"HEALTH_TIMEOUT": float("nan")}, "'HEALTH_TIMEOUT'] must be a number > 0, not nan"),
        ({"HEARTBEAT_INTERVAL": float("inf")}, "must be a number > 0, not inf"),
        (
            {"RECONNECT_MIN_DELAY": 10, "RECONNECT_MAX_DELAY": 1},
            "'RECONNECT_MIN_DELAY'] (10) must not exceed PGSSE['RECONNECT_MAX_DELAY'] (1)",
        ),
        ({"RETENTION": {"": {"max_age": "1d"}}}, "max_age must be a number of seconds > 0"),
        ({"RETENTION": {"": {"max_events": 1.5}}}, "max_events must be an integer > 0"),
        ({"RETENTION": {"": {"lossy": "yes"}}}, "lossy must be True or False"),
        ({"AUTHORIZE": print}, "'AUTHORIZE'] must be a dotted path to a function"),
        ({"HANDLE_SIGNALS": "yes"}, "'HANDLE_SIGNALS'] must be True or False"),
        ({"DATABASE": ""}, "'DATABASE'] must be a non-empty string"),
    ],
)
def test_invalid_values_are_errors_naming_the_setting_and_what_it_accepts(
    pgsse: dict[str, object], says: str
) -> None:
    with override_settings(PGSSE=pgsse):
        messages = [m for m in run_checks(tags=["pgsse"]) if m.id == "pgsse.E004"]
    assert len(messages) == 1, messages
    assert says in messages[0].msg
    assert str(messages[0].hint).startswith("Every option")


def test_every_problem_is_reported_at_once() -> None:
    with override_settings(PGSSE={"RETRY_MS": -1, "SWEEP_INTERVAL": "5s", "NOPE": 1}):
        messages = [m.msg for m in run_checks(tags=["pgsse"]) if m.id == "pgsse.E004"]
    assert len(messages) == 3, messages
    assert any("unknown PGSSE setting 'NOPE'" in m for m in messages)


def test_pgsse_that_is_not_a_dict_is_an_error() -> None:
    with override_settings(PGSSE="x"):
        (message,) = [m for m in run_checks(tags=["pgsse"]) if m.id == "pgsse.E004"]
    assert "PGSSE must be a dict of options, not str" in message.msg


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("myproject.nowhere.allow", "cannot be imported"),
        ("pgsse.authorization", "names a module, not a function in it"),
        ("pgsse.views.StreamView", "is a type, not a function"),
    ],
)
def test_an_authorize_path_that_is_no_function_is_an_error(path: str, says: str) -> None:
    with override_settings(PGSSE={"AUTHORIZE": path}):
        (message,) = [m for m in run_checks(tags=["pgsse"]) if m.id == "pgsse.E008"]
    assert says in message.msg


def test_an_authorize_path_naming_a_module_not_imported_yet_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """import_string() finds no attribute for a submodule nobody imported yet: that is still
    a module, not something that "cannot be imported"."""
    import json

    monkeypatch.delitem(sys.modules, "json.tool", raising=False)
    monkeypatch.delattr(json, "tool", raising=False)
    with override_settings(PGSSE={"AUTHORIZE": "json.tool"}):
        (message,) = [m for m in run_checks(tags=["pgsse"]) if m.id == "pgsse.E008"]
    assert message.msg == "PGSSE['AUTHORIZE'] = 'json.tool' names a module, not a function in it."


def test_the_asgi_hints_name_this_project_not_a_placeholder() -> None:
    with override_settings(ASGI_APPLICATION=None):
        (message,) = [m for m in run_checks(tags=["pgsse"]) if m.id == "pgsse.E002"]
    assert "ASGI_APPLICATION = 'tests.asgi.application'" in str(message.hint)
    assert "yourproject" not in str(message.hint)


def test_without_pgsse_in_installed_apps_check_says_so_where_a_stream_is_routed(
    tmp_path: Path,
) -> None:
    (tmp_path / "forgot_settings.py").write_text(
        "SECRET_KEY = 'x'\n"
        "INSTALLED_APPS = ['django.contrib.contenttypes', 'django.contrib.auth']\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'x'}}\n"
        "ROOT_URLCONF = 'forgot_urls'\n"
    )
    (tmp_path / "forgot_urls.py").write_text(
        "from django.urls import path\n"
        "from pgsse.authorization import allow_authenticated\n"
        "from pgsse.views import StreamView\n"
        "urlpatterns = [path('events/<str:channel>/',"
        " StreamView.as_view(authorize=allow_authenticated))]\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--settings=forgot_settings"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": f"{tmp_path}:{REPOSITORY / 'src'}", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "pgsse is not in INSTALLED_APPS: add 'pgsse' there" in result.stderr


def test_every_check_is_tagged_and_ids_are_unique_per_condition() -> None:
    from django.core.checks import registry

    ours = [
        check
        for check in registry.registry.get_checks(include_deployment_checks=True)
        if check.__module__ == "pgsse.checks"
    ]
    assert len(ours) == 7
    assert all("pgsse" in check.tags for check in ours)
    source = (REPOSITORY / "src" / "pgsse" / "checks.py").read_text()
    ids = re.findall(r'id="(pgsse\.[EW]\d{3})"', source)
    assert len(ids) == len(set(ids)), ids


def test_a_stream_without_authorization_is_flagged_by_route() -> None:
    with override_settings(ROOT_URLCONF="tests.unauthorized_urls"):
        messages = [m for m in run_checks(tags=["pgsse"]) if m.id == "pgsse.W007"]
    assert [m.msg.split("'")[1] for m in messages] == ["feeds/<str:channel>/"]
    with override_settings(
        ROOT_URLCONF="tests.unauthorized_urls",
        PGSSE={"AUTHORIZE": "pgsse.authorization.allow_authenticated"},
    ):
        assert not [m for m in run_checks(tags=["pgsse"]) if m.id == "pgsse.W007"]


def test_an_unwrapped_asgi_application_is_flagged() -> None:
    with override_settings(ASGI_APPLICATION="tests.asgi_unwrapped.application"):
        (message,) = [m for m in run_checks(tags=["pgsse"]) if m.id == "pgsse.W006"]
    assert "is not wrapped by pgsse.asgi.wrap()" in message.msg
    # What is true of unwrapped streams (they do end with retry: at shutdown).
    assert "holds a thread of its own" in message.msg
    assert "REAUTHORIZE_INTERVAL re-checks nothing" in message.msg
    assert "shutdown" not in message.msg
    for wrapped in ("tests.asgi.application", "tests.asgi.with_static_files"):
        with override_settings(ASGI_APPLICATION=wrapped):
            assert not [m for m in run_checks(tags=["pgsse"]) if m.id == "pgsse.W006"], wrapped


def test_deployment_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not [m for m in run_checks(include_deployment_checks=True) if m.id == "pgsse.W009"]
    monkeypatch.setitem(settings.DATABASES["default"], "CONN_MAX_AGE", 60)
    with override_settings(
        PGSSE={"MAX_STREAM_AGE": None, "REAUTHORIZE_INTERVAL": None, "HANDLE_SIGNALS": False}
    ):
        found = {m.id for m in run_checks(include_deployment_checks=True, tags=["pgsse"])}
        plain = {m.id for m in run_checks(tags=["pgsse"])}
    assert {"pgsse.W009", "pgsse.W010", "pgsse.W011"} <= found
    assert not plain & {"pgsse.W009", "pgsse.W010", "pgsse.W011"}
    # Streams that never age are still re-checked, every five minutes by default.
    with override_settings(PGSSE={"MAX_STREAM_AGE": None}):
        found = {m.id for m in run_checks(include_deployment_checks=True, tags=["pgsse"])}
    assert "pgsse.W010" not in found
