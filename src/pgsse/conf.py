"""pgsse's settings: one ``PGSSE = {...}`` dict in Django settings, with documented defaults.

Read through :func:`get_settings`, which caches the merged result and forgets it when
``PGSSE`` changes (``override_settings`` in tests), the way Django's own caches do.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

__all__ = ["PgsseSettings", "get_settings"]


@dataclass(frozen=True)
class PgsseSettings:
    """Every option, its default, and what it does. Documented in docs/configuration.md."""

    #: Alias in ``DATABASES`` whose PostgreSQL holds the log and carries notifications.
    DATABASE: str = "default"
    #: Seconds between comment heartbeats on an idle stream.
    HEARTBEAT_INTERVAL: float = 15.0
    #: Milliseconds the client waits before reconnecting (sent as ``retry:``).
    RETRY_MS: int = 2000
    #: Events a stream may have queued before it is closed as too slow (it then resumes
    #: from the log on reconnect).
    MAX_BUFFERED_EVENTS: int = 1000
    #: Events read from the log per query when replaying or gap-filling.
    REPLAY_BATCH: int = 500
    #: Seconds between checks of the log for events whose notification was lost.
    SWEEP_INTERVAL: float = 5.0
    #: Seconds of silence after which the listener checks its connection with a query.
    HEALTH_INTERVAL: float = 10.0
    #: Seconds a health query may take before the listener connection is declared dead.
    HEALTH_TIMEOUT: float = 5.0
    #: First and largest delay, in seconds, between listener reconnection attempts.
    RECONNECT_MIN_DELAY: float = 0.05
    RECONNECT_MAX_DELAY: float = 5.0
    #: Seconds a new stream waits for the listener before asking the client to retry.
    SUBSCRIBE_TIMEOUT: float = 10.0
    #: Streams whose hooks (``channels``, ``authorize``) may run at once in a process. Each
    #: may hold a database connection while it runs: a reconnect storm of thousands of
    #: clients must not exhaust PostgreSQL's ``max_connections``.
    SETUP_CONCURRENCY: int = 4
    #: Most channels one stream may follow (429 beyond).
    MAX_CHANNELS_PER_STREAM: int = 16
    #: Most streams one logged-in user may have open in one process at once (429
    #: beyond). ``None``: no limit. Anonymous streams are not counted (behind a proxy
    #: every anonymous client would share one address).
    MAX_STREAMS_PER_USER: int | None = 32
    #: Dotted path of the default authorization hook ``(request, channel) -> bool``.
    AUTHORIZE: str = "pgsse.views.allow_authenticated"
    #: Retention rules by channel-name prefix; see :mod:`pgsse.retention`.
    RETENTION: dict[str, dict[str, float | int | None]] = field(
        default_factory=lambda: {"": {"max_age": 7 * 24 * 3600, "max_events": 10_000}}
    )
    #: Seconds between automatic prunes in each process (one prunes at a time);
    #: ``None`` leaves pruning to ``manage.py pgsse_prune``.
    PRUNE_INTERVAL: float | None = 600.0
    #: End open streams (with a ``retry:`` hint) when the process gets SIGTERM or SIGINT,
    #: chaining to the server's own handler, so that graceful shutdown does not wait for
    #: clients that never leave.
    HANDLE_SIGNALS: bool = True

    def __post_init__(self) -> None:
        for name in (
            "HEARTBEAT_INTERVAL",
            "MAX_BUFFERED_EVENTS",
            "REPLAY_BATCH",
            "SWEEP_INTERVAL",
            "HEALTH_INTERVAL",
            "HEALTH_TIMEOUT",
            "RECONNECT_MIN_DELAY",
            "RECONNECT_MAX_DELAY",
            "SUBSCRIBE_TIMEOUT",
            "SETUP_CONCURRENCY",
            "MAX_CHANNELS_PER_STREAM",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ImproperlyConfigured(
                    f"PGSSE[{name!r}] must be a positive number, not {value!r}"
                )
        for name in ("PRUNE_INTERVAL", "MAX_STREAMS_PER_USER"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int | float) or isinstance(value, bool) or value <= 0
            ):
                raise ImproperlyConfigured(
                    f"PGSSE[{name!r}] must be a positive number or None, not {value!r}"
                )
        if not isinstance(self.RETRY_MS, int) or self.RETRY_MS < 0:
            raise ImproperlyConfigured("PGSSE['RETRY_MS'] must be a non-negative integer")

    @classmethod
    def from_django(cls) -> PgsseSettings:
        given: dict[str, Any] = dict(getattr(django_settings, "PGSSE", {}) or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown PGSSE setting(s): {', '.join(unknown)}. "
                f"Known: {', '.join(sorted(known))}."
            )
        return cls(**given)


@cache
def get_settings() -> PgsseSettings:
    """The current settings, merged with defaults."""
    return PgsseSettings.from_django()


@receiver(setting_changed)
def _forget_settings(*, setting: str, **kwargs: object) -> None:
    if setting == "PGSSE":
        get_settings.cache_clear()
