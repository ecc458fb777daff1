"""System checks: a misconfiguration fails ``manage.py check`` with what to do about it.

Registered under the ``pgsse`` tag (``manage.py check --tag pgsse``), one ID per condition;
the ``--deploy`` ones only with ``manage.py check --deploy``. Every ID is explained in
docs/configuration.md.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.db import connections
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.module_loading import import_string

from pgsse.conf import InvalidSettings, PgsseSettings, get_settings

__all__ = [
    "check_asgi",
    "check_authorization",
    "check_database",
    "check_deployment",
    "check_gzip",
    "check_metrics",
    "check_settings",
]

DOCS = "https://github.com/django-pgsse/django-pgsse/blob/main/docs/configuration.md"
_GZIP = "django.middleware.gzip.GZipMiddleware"


def _settings() -> PgsseSettings | None:
    """The settings, or None if they are invalid (``pgsse.E004`` then says why)."""
    try:
        return get_settings()
    except InvalidSettings:
        return None


@register("pgsse")
def check_settings(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    get_settings.cache_clear()
    try:
        pgsse_settings = get_settings()
    except InvalidSettings as exc:
        return [
            Error(problem, id="pgsse.E004", hint=f"Every option and its default: {DOCS}")
            for problem in exc.problems
        ]
    if pgsse_settings.AUTHORIZE is None:
        return []
    problem = _not_a_function(pgsse_settings.AUTHORIZE)
    if problem is None:
        return []
    return [
        Error(
            f"PGSSE['AUTHORIZE'] = {pgsse_settings.AUTHORIZE!r} {problem}.",
            id="pgsse.E008",
            hint="Name a function (request, channel) -> bool, such as"
            " 'pgsse.authorization.only_own_channel', or leave AUTHORIZE out (deny by default).",
        )
    ]


def _not_a_function(path: str) -> str | None:
    """What is wrong with ``path`` as the dotted path of a function; None if nothing."""
    try:
        found = import_string(path)
    except ImportError as exc:
        # import_string() imports all but the last name, then looks that up: a submodule
        # not imported yet is "not defined" there, though it imports fine.
        try:
            importlib.import_module(path)
        except ImportError:
            return f"cannot be imported: {exc}"
        return "names a module, not a function in it"
    if isinstance(found, ModuleType):
        return "names a module, not a function in it"
    if callable(found) and not isinstance(found, type):
        return None
    return f"is a {type(found).__name__}, not a function"


@register("pgsse")
def check_database(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    pgsse_settings = _settings()
    if pgsse_settings is None:
        return []
    alias = pgsse_settings.DATABASE
    if alias not in connections:
        return [
            Error(
                f"PGSSE['DATABASE'] names {alias!r}, which is not in DATABASES.",
                id="pgsse.E001",
                hint="Point it at your PostgreSQL alias.",
            )
        ]
    if connections[alias].vendor != "postgresql":
        return [
            Error(
                f"pgsse needs PostgreSQL, but DATABASES[{alias!r}] uses "
                f"{connections[alias].settings_dict['ENGINE']}.",
                id="pgsse.E005",
                hint="Use django.db.backends.postgresql (LISTEN/NOTIFY and the event log need it).",
            )
        ]
    return []


@register("pgsse")
def check_asgi(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    path = getattr(settings, "ASGI_APPLICATION", None)
    if not path:
        return [
            Error(
                "pgsse streams need an ASGI server, but ASGI_APPLICATION is not set.",
                id="pgsse.E002",
                hint=f"Set ASGI_APPLICATION = '{_project_package()}.asgi.application', wrap "
                "it with pgsse.asgi.wrap(), and serve it with uvicorn, granian or daphne; "
                "under WSGI a stream is refused.",
            )
        ]
    from pgsse.asgi import is_wrapped

    try:
        application = import_string(path)
    except Exception as exc:  # an import error of the project's own module
        found = f"could not be imported ({exc})"
    else:
        if is_wrapped(application):
            return []
        found = "is not wrapped by pgsse.asgi.wrap()"
    return [
        Warning(
            f"ASGI_APPLICATION {path!r} {found}: every open stream then holds a thread of "
            "its own for as long as it stays open, the hub starts with the first stream "
            "instead of with the worker, and REAUTHORIZE_INTERVAL re-checks nothing.",
            id="pgsse.W006",
            hint="In your asgi.py: application = pgsse.asgi.wrap(get_asgi_application()).",
        )
    ]


def _project_package() -> str:
    """The package of the settings module (``yourproject`` for ``yourproject.settings``)."""
    # override_settings() hides SETTINGS_MODULE; the environment still names it.
    module = settings.SETTINGS_MODULE or os.environ.get("DJANGO_SETTINGS_MODULE", "")
    return module.rpartition(".")[0] or "yourproject"


@register("pgsse")
def check_gzip(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    gzip = import_string(_GZIP)
    for path in settings.MIDDLEWARE:
        try:
            middleware = import_string(path)
        except ImportError:
            continue
        if isinstance(middleware, type) and issubclass(middleware, gzip):
            return [
                Warning(
                    f"{path} compresses streaming responses without flushing, which holds "
                    "Server-Sent Events back until kilobytes have accumulated.",
                    id="pgsse.W003",
                    hint="pgsse's own streams opt out (they send Content-Encoding: identity); "
                    "any other streaming view of yours is delayed. Prefer compression in the "
                    "proxy, which can leave text/event-stream alone.",
                )
            ]
    return []


@register("pgsse")
def check_metrics(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    pgsse_settings = _settings()
    if pgsse_settings is None or (
        not pgsse_settings.METRICS_ALLOW_FROM and pgsse_settings.METRICS_TOKEN is None
    ):
        return []
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return [
            Error(
                "PGSSE['METRICS_ALLOW_FROM'] or PGSSE['METRICS_TOKEN'] turns /metrics on, but "
                "prometheus-client is not installed: /metrics would answer 501.",
                id="pgsse.E012",
                hint="pip install 'django-pgsse[metrics]', or leave both settings out.",
            )
        ]
    return []


@register("pgsse", "urls")
def check_authorization(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    pgsse_settings = _settings()
    if pgsse_settings is None or pgsse_settings.AUTHORIZE is not None:
        return []
    try:
        patterns = list(_stream_views(get_resolver().url_patterns, ""))
    except Exception:  # a broken URLconf is reported by Django's own checks
        return []
    return [
        Warning(
            f"The stream at {route!r} has no authorize hook and PGSSE['AUTHORIZE'] is not "
            "set: it refuses every stream (pgsse denies by default).",
            id="pgsse.W007",
            hint="Pass authorize= to StreamView.as_view() (see pgsse.authorization for ready "
            "hooks, such as only_own_channel), or set PGSSE['AUTHORIZE'] to a dotted path.",
        )
        for route in patterns
    ]


def _stream_views(patterns: Sequence[Any], prefix: str) -> Iterator[str]:
    """Routes of StreamViews without an ``authorize`` of their own."""
    from pgsse.views import StreamView

    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _stream_views(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "view_class", None)
            if isinstance(view_class, type) and issubclass(view_class, StreamView):
                initkwargs = getattr(pattern.callback, "view_initkwargs", {})
                if initkwargs.get("authorize", view_class.authorize) is None:
                    yield prefix + str(pattern.pattern)


@register("pgsse", deploy=True)
def check_deployment(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    pgsse_settings = _settings()
    if pgsse_settings is None:
        return []
    messages: list[CheckMessage] = []
    for alias, database in settings.DATABASES.items():
        max_age = database.get("CONN_MAX_AGE", 0)
        if max_age is None or max_age > 0:
            messages.append(
                Warning(
                    f"DATABASES[{alias!r}]['CONN_MAX_AGE'] is {max_age!r}: under ASGI every "
                    "request runs in its own thread, so persistent connections pile up.",
                    id="pgsse.W009",
                    hint="Use CONN_MAX_AGE = 0, with Django's connection pool "
                    "(OPTIONS['pool']) if connecting costs too much.",
                )
            )
    if pgsse_settings.MAX_STREAM_AGE is None and pgsse_settings.REAUTHORIZE_INTERVAL is None:
        messages.append(
            Warning(
                "PGSSE['MAX_STREAM_AGE'] and PGSSE['REAUTHORIZE_INTERVAL'] are both None: an "
                "open stream keeps its access for as long as it stays open, whatever changes.",
                id="pgsse.W010",
                hint="Keep a maximum age (one hour by default), and call "
                "pgsse.close_streams() where access is revoked.",
            )
        )
    if not pgsse_settings.HANDLE_SIGNALS:
        messages.append(
            Warning(
                "PGSSE['HANDLE_SIGNALS'] is False: on SIGTERM open streams are not ended, and "
                "uvicorn and granian wait for them until their graceful-shutdown timeout.",
                id="pgsse.W011",
                hint="Leave it True unless your server ends streams itself.",
            )
        )
    return messages
