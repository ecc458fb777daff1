"""System checks: a misconfiguration fails ``manage.py check`` with what to do about it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.utils.module_loading import import_string

from pgsse.conf import PgsseSettings, get_settings
from pgsse.retention import rule_for

__all__ = ["check_asgi", "check_database", "check_gzip", "check_settings"]

_GZIP = "django.middleware.gzip.GZipMiddleware"


def _settings() -> PgsseSettings | None:
    """The settings, or None if they are invalid (``pgsse.E004`` then says why)."""
    try:
        settings = get_settings()
        rule_for("", settings.RETENTION)
    except (ImproperlyConfigured, TypeError, ValueError):
        return None
    return settings


@register()
def check_settings(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    get_settings.cache_clear()
    try:
        pgsse_settings = get_settings()
        rule_for("", pgsse_settings.RETENTION)
        try:
            import_string(pgsse_settings.AUTHORIZE)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"PGSSE['AUTHORIZE'] = {pgsse_settings.AUTHORIZE!r} cannot be imported: {exc}"
            ) from exc
    except (ImproperlyConfigured, TypeError, ValueError) as exc:
        return [
            Error(
                f"PGSSE settings are invalid: {exc}",
                id="pgsse.E004",
                hint="See docs/configuration.md for every option and its default.",
            )
        ]
    return []


@register()
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
                id="pgsse.E001",
                hint="Use django.db.backends.postgresql (LISTEN/NOTIFY and the event log need it).",
            )
        ]
    return []


@register()
def check_asgi(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    if not getattr(settings, "ASGI_APPLICATION", None):
        return [
            Error(
                "pgsse streams need an ASGI server, but ASGI_APPLICATION is not set.",
                id="pgsse.E002",
                hint="Set ASGI_APPLICATION = 'yourproject.asgi.application' and serve that "
                "application with uvicorn, granian or daphne; under WSGI a stream holds a "
                "worker thread for as long as it is open.",
            )
        ]
    return []


@register()
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
