"""Production settings of the chat: ``DJANGO_SETTINGS_MODULE=chatsite.production``.

Everything in :mod:`chatsite.settings`, with:

- ``DEBUG`` off, whatever ``DJANGO_DEBUG`` says; ``DJANGO_SECRET_KEY``,
  ``DJANGO_ALLOWED_HOSTS`` and ``DATABASE_URL`` required from the environment (no embedded
  database, no development key);
- HTTPS behind a proxy that sets ``X-Forwarded-Proto``: secure cookies, HSTS
  (``DJANGO_HSTS_SECONDS``, a year by default, subdomains, preload), plain HTTP redirected,
  except the probes and metrics (load balancers and Prometheus call the worker directly);
- static files from ``STATIC_ROOT`` (``DJANGO_STATIC_ROOT``; run ``collectstatic``), with
  hashed names and compressed copies, served by servestatic (chatsite/static_files.py);
- JSON log lines on stderr (``pgsse.logging.JsonFormatter``);
- ``/metrics`` for the networks in ``PGSSE_METRICS_ALLOW_FROM`` (comma-separated, loopback by
  default) and for requests carrying ``PGSSE_METRICS_TOKEN``.

docs/deployment.md runs it under uvicorn and systemd behind nginx.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_missing = [
    name
    for name in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL")
    if not os.environ.get(name)
]
if _missing:
    raise ImproperlyConfigured(
        f"chatsite.production reads {', '.join(_missing)} from the environment; set them."
    )

from chatsite.settings import *  # noqa: E402, F403
from chatsite.settings import PGSSE as _BASE_PGSSE  # noqa: E402

DEBUG = False

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
# Probes and scrapes reach the worker itself over plain HTTP: a redirect would pass a
# probe (Kubernetes counts 3xx as success) without asking the application anything.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", str(STATIC_ROOT)))  # noqa: F405
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "servestatic.storage.CompressedManifestStaticFilesStorage"},
}
SERVESTATIC_USE_FINDERS = False
SERVESTATIC_AUTOREFRESH = False

PGSSE = {
    **_BASE_PGSSE,
    "METRICS_ALLOW_FROM": [
        network
        for network in os.environ.get("PGSSE_METRICS_ALLOW_FROM", "127.0.0.1,::1").split(",")
        if network.strip()
    ],
    "METRICS_TOKEN": os.environ.get("PGSSE_METRICS_TOKEN") or None,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "pgsse.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"pgsse": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
