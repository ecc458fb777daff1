"""pgsse's settings: one ``PGSSE = {...}`` dict in Django settings, with documented defaults.

Read through :func:`get_settings`, which validates and caches the merged result and forgets
it when ``PGSSE`` changes (``override_settings`` in tests), the way Django's own caches do.
Every problem is reported at once, naming the key and what it accepts
(:class:`InvalidSettings`; ``manage.py check`` shows it as ``pgsse.E004``).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

__all__ = [
    "InvalidSettings",
    "PgsseSettings",
    "get_settings",
    "require_installed",
    "retention_problem",
]

#: Settings that were renamed: the old key's error names the new one.
_RENAMED = {"MAX_BUFFERED_EVENTS": "MAX_BUFFERED_BYTES (a size in bytes)"}


class InvalidSettings(ImproperlyConfigured):
    """``PGSSE`` holds values pgsse cannot use; ``problems`` lists each, for people."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class PgsseSettings:
    """Every option, its default, and what it does. Documented in docs/configuration.md."""

    #: Alias in ``DATABASES`` whose PostgreSQL holds the log and carries notifications.
    DATABASE: str = "default"
    #: Seconds between comment heartbeats on an idle stream.
    HEARTBEAT_INTERVAL: float = 15.0
    #: Milliseconds the client waits before reconnecting (sent as ``retry:``).
    RETRY_MS: int = 2000
    #: Bytes a stream may have queued or in flight before it is closed as too slow (it then
    #: resumes from the log on reconnect). Also bounds a replay's batches (half of it).
    MAX_BUFFERED_BYTES: int = 256 * 1024
    #: Seconds a write to a client may take before the stream is closed and its connection
    #: dropped.
    WRITE_TIMEOUT: float = 30.0
    #: Most bytes of events one stream open may replay; the stream then ends with
    #: ``retry:`` and its reconnect goes on from there. ``None``: no limit.
    MAX_REPLAY_BYTES: int | None = 2 * 1024 * 1024
    #: Largest request body a stream request may carry (a GET has none): 413 beyond, before
    #: the request is authenticated.
    MAX_REQUEST_BODY_BYTES: int = 16 * 1024
    #: Stream opens allowed per minute to one logged-in user, and to one client address
    #: (any user), in one process, refused or not (429 beyond). ``None``: no limit.
    OPENS_PER_MINUTE_PER_USER: int | None = 120
    OPENS_PER_MINUTE_PER_ADDRESS: int | None = 3000
    #: Events read from the log per query when replaying or gap-filling.
    REPLAY_BATCH: int = 500
    #: Bytes and seconds for which reads of the log are kept to serve other streams.
    READ_CACHE_BYTES: int = 16 * 1024 * 1024
    READ_CACHE_SECONDS: float = 5.0
    #: Seconds a read of the log may take before its connection is given up.
    READ_TIMEOUT: float = 10.0
    #: Seconds between checks of the log for events whose notification was lost (or never
    #: sent: a process that died between a commit and its notification).
    SWEEP_INTERVAL: float = 5.0
    #: When listeners are woken: ``"after_commit"``, by this process's notifier thread once
    #: the publishing transaction has committed (coalesced: one notifying transaction per
    #: round trip for every commit meanwhile), or ``"in_transaction"``, by the publishing
    #: transaction itself (every such commit then takes PostgreSQL's database-wide notify
    #: lock; no thread, nothing left to the sweep if the process dies right after commit).
    NOTIFY: str = "after_commit"
    #: Largest event ``publish()`` accepts: its JSON data, in bytes (UTF-8). Half of
    #: ``MAX_BUFFERED_BYTES`` if that is smaller: one event never overflows a stream alone.
    MAX_EVENT_BYTES: int = 64 * 1024
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
    #: Most streams open at once in one process (503 beyond). ``None``: no limit.
    MAX_STREAMS: int | None = 10_000
    #: Most streams one logged-in user may have open in one process at once (429
    #: beyond). ``None``: no limit. Anonymous streams are not counted (behind a proxy
    #: every anonymous client would share one address).
    MAX_STREAMS_PER_USER: int | None = 32
    #: Seconds after which a stream ends with ``retry:`` and reconnects, authorized afresh
    #: (each stream's age is drawn between 75% and 100% of it). ``None``: no limit.
    MAX_STREAM_AGE: float | None = 3600.0
    #: Seconds between re-checks of an open stream's authorization (through the whole
    #: request phase again, under ``pgsse.asgi.wrap``). ``None``: only at open. Five
    #: minutes: access taken away behind pgsse's back (an SQL update, an expired session)
    #: ends a stream within minutes, at one request phase per stream per interval.
    REAUTHORIZE_INTERVAL: float | None = 300.0
    #: Dotted path of the default authorization hook ``(request, channel) -> bool``.
    #: ``None``: a ``StreamView`` without its own ``authorize`` refuses every stream.
    AUTHORIZE: str | None = None
    #: Retention rules by channel-name prefix; see :mod:`pgsse.retention`.
    RETENTION: dict[str, dict[str, float | int | bool | None]] = field(
        default_factory=lambda: {"": {"max_age": 7 * 24 * 3600, "max_events": 10_000}}
    )
    #: Seconds between automatic prunes in each process (one prunes at a time);
    #: ``None`` leaves pruning to ``manage.py pgsse_prune``.
    PRUNE_INTERVAL: float | None = 600.0
    #: Keep long-lived objects out of the cyclic garbage collector's full passes
    #: (``gc.freeze()``): once at start-up under ``wrap()``, and as soon as another
    #: 500 streams have opened. Full passes then last milliseconds, not a second, with
    #: thousands of streams open. See docs/performance.md for the trade-off.
    GC_FREEZE: bool = True
    #: End open streams (with a ``retry:`` hint) when the process gets SIGTERM or SIGINT,
    #: chaining to the server's own handler, so that graceful shutdown does not wait for
    #: clients that never leave.
    HANDLE_SIGNALS: bool = True
    #: Client addresses (IP networks, such as ``"127.0.0.1"`` or ``"10.0.0.0/8"``) that may
    #: read ``/metrics``. With neither this nor ``METRICS_TOKEN``, metrics are off (404).
    METRICS_ALLOW_FROM: list[str] = field(default_factory=list)
    #: A secret that, sent as ``Authorization: Bearer <token>``, reads ``/metrics`` from
    #: any address. ``None``: no token.
    METRICS_TOKEN: str | None = None
    #: Seconds ``/readyz`` and ``/metrics`` wait for the database before answering without.
    PROBE_TIMEOUT: float = 0.5

    @property
    def largest_event(self) -> int:
        """The largest event's data ``publish()`` accepts, in bytes."""
        return min(self.MAX_EVENT_BYTES, self.MAX_BUFFERED_BYTES // 2)

    @classmethod
    def from_django(cls) -> PgsseSettings:
        given = getattr(django_settings, "PGSSE", None)
        if given is None:
            given = {}
        if not isinstance(given, Mapping):
            raise InvalidSettings([f"PGSSE must be a dict of options, not {type(given).__name__}"])
        problems = _problems(given)
        if problems:
            raise InvalidSettings(problems)
        return cls(**given)


def _number(positive: bool = True, integer: bool = False, optional: bool = False) -> _Check:
    kind = "an integer" if integer else "a number"
    wanted = f"{kind} > 0" if positive else f"{kind} >= 0"
    if optional:
        wanted += " or None"

    def check(value: object) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return wanted
        if integer and not isinstance(value, int):
            return wanted
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            return wanted
        return None

    return check


def _dotted_path_or_none(value: object) -> str | None:
    if value is None or (isinstance(value, str) and "." in value):
        return None
    return "a dotted path to a function, such as 'myapp.streams.can_read', or None"


def _notify_mode(value: object) -> str | None:
    return None if value in NOTIFY_MODES else " or ".join(repr(mode) for mode in NOTIFY_MODES)


#: The values of ``PGSSE["NOTIFY"]``.
NOTIFY_MODES = ("after_commit", "in_transaction")


def _string(value: object) -> str | None:
    return None if isinstance(value, str) and value else "a non-empty string"


def _boolean(value: object) -> str | None:
    return None if isinstance(value, bool) else "True or False"


def _networks(value: object) -> str | None:
    wanted = "a list of IP addresses or networks, such as ['127.0.0.1', '10.0.0.0/8']"
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        return wanted
    try:
        for network in value:
            ipaddress.ip_network(network, strict=False)
    except ValueError as exc:
        return f"{wanted} ({exc})"
    return None


#: Shortest metrics token accepted: anything shorter is guessable.
MIN_TOKEN_LENGTH = 16


def _token(value: object) -> str | None:
    if value is None or (isinstance(value, str) and len(value) >= MIN_TOKEN_LENGTH):
        return None
    return f"None or a secret of at least {MIN_TOKEN_LENGTH} characters (from the environment)"


def retention_problem(config: object) -> str | None:
    """What ``PGSSE["RETENTION"]`` should be, if ``config`` is not that; None if it is."""
    shape = (
        "a dict of channel-name prefixes to rules such as"
        " {'max_age': 3600, 'max_events': 1000, 'lossy': False}"
    )
    if not isinstance(config, Mapping):
        return shape
    for prefix, rule in config.items():
        if not isinstance(prefix, str):
            return f"{shape} (prefix {prefix!r} is not a string)"
        if not isinstance(rule, Mapping):
            return f"{shape} (the rule for {prefix!r} is not a dict)"
        unknown = set(rule) - {"max_age", "max_events", "lossy"}
        if unknown:
            return f"{shape} (the rule for {prefix!r} has unknown keys {sorted(unknown)})"
        for key, integer in (("max_age", False), ("max_events", True)):
            value = rule.get(key)
            if value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int if integer else int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                kind = "an integer" if integer else "a number of seconds"
                return f"{shape} ({prefix!r}: {key} must be {kind} > 0 or None, not {value!r})"
        if not isinstance(rule.get("lossy", False), bool):
            return f"{shape} ({prefix!r}: lossy must be True or False)"
    return None


def _retention(value: object) -> str | None:
    return retention_problem(value)


_Check = Callable[[object], "str | None"]

_CHECKS: dict[str, _Check] = {
    "DATABASE": _string,
    "HEARTBEAT_INTERVAL": _number(),
    "RETRY_MS": _number(positive=False, integer=True),
    "MAX_BUFFERED_BYTES": _number(integer=True),
    "WRITE_TIMEOUT": _number(),
    "MAX_REPLAY_BYTES": _number(integer=True, optional=True),
    "MAX_REQUEST_BODY_BYTES": _number(positive=False, integer=True),
    "OPENS_PER_MINUTE_PER_USER": _number(integer=True, optional=True),
    "OPENS_PER_MINUTE_PER_ADDRESS": _number(integer=True, optional=True),
    "REPLAY_BATCH": _number(integer=True),
    "READ_CACHE_BYTES": _number(positive=False, integer=True),
    "READ_CACHE_SECONDS": _number(positive=False),
    "READ_TIMEOUT": _number(),
    "SWEEP_INTERVAL": _number(),
    "NOTIFY": _notify_mode,
    "MAX_EVENT_BYTES": _number(integer=True),
    "HEALTH_INTERVAL": _number(),
    "HEALTH_TIMEOUT": _number(),
    "RECONNECT_MIN_DELAY": _number(),
    "RECONNECT_MAX_DELAY": _number(),
    "SUBSCRIBE_TIMEOUT": _number(),
    "SETUP_CONCURRENCY": _number(integer=True),
    "MAX_CHANNELS_PER_STREAM": _number(integer=True),
    "MAX_STREAMS": _number(integer=True, optional=True),
    "MAX_STREAMS_PER_USER": _number(integer=True, optional=True),
    "MAX_STREAM_AGE": _number(optional=True),
    "REAUTHORIZE_INTERVAL": _number(optional=True),
    "AUTHORIZE": _dotted_path_or_none,
    "RETENTION": _retention,
    "PRUNE_INTERVAL": _number(optional=True),
    "GC_FREEZE": _boolean,
    "HANDLE_SIGNALS": _boolean,
    "METRICS_ALLOW_FROM": _networks,
    "METRICS_TOKEN": _token,
    "PROBE_TIMEOUT": _number(),
}


#: Settings whose value an error message must not show.
_SECRETS = frozenset({"METRICS_TOKEN"})


def _problems(given: Mapping[Any, Any]) -> list[str]:
    known = {f.name for f in fields(PgsseSettings)}
    assert known == set(_CHECKS), "every setting needs its check"
    problems = []
    for key, value in given.items():
        if key in _RENAMED:
            problems.append(f"PGSSE[{key!r}] was replaced by {_RENAMED[key]}")
        elif key not in known:
            problems.append(f"unknown PGSSE setting {key!r}; known: {', '.join(sorted(known))}")
        else:
            wanted = _CHECKS[key](value)
            if wanted is not None:
                # A secret is never echoed: check output ends up in logs.
                shown = "what it is" if key in _SECRETS else repr(value)
                problems.append(f"PGSSE[{key!r}] must be {wanted}, not {shown}")
    low = given.get("RECONNECT_MIN_DELAY", PgsseSettings.RECONNECT_MIN_DELAY)
    high = given.get("RECONNECT_MAX_DELAY", PgsseSettings.RECONNECT_MAX_DELAY)
    if not problems and low > high:
        problems.append(
            f"PGSSE['RECONNECT_MIN_DELAY'] ({low!r}) must not exceed"
            f" PGSSE['RECONNECT_MAX_DELAY'] ({high!r})"
        )
    return problems


def require_installed() -> None:
    """Raise ``ImproperlyConfigured``, saying what to do, if pgsse is not an installed app."""
    if not _installed():
        raise ImproperlyConfigured(
            "pgsse is not in INSTALLED_APPS: add 'pgsse' there (it owns the event log's"
            " tables, migrations and checks), then run manage.py migrate."
        )


# Asked at every publish: the app registry is searched once (again if INSTALLED_APPS is
# overridden).
@cache
def _installed() -> bool:
    from django.apps import apps

    return apps.is_installed("pgsse")


@cache
def get_settings() -> PgsseSettings:
    """The current settings, merged with defaults. Raises :class:`InvalidSettings`."""
    return PgsseSettings.from_django()


@receiver(setting_changed)
def _forget_settings(*, setting: str, **kwargs: object) -> None:
    if setting == "PGSSE":
        get_settings.cache_clear()
    elif setting == "INSTALLED_APPS":
        _installed.cache_clear()
