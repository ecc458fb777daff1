"""The chat's settings for load tests: production-like, on the load test's own database.

Small buffers and timeouts make the faults show within a run of minutes: a frozen client
overflows 64 KiB, not 256 KiB; a listener that stops answering is noticed within seconds.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "load-tests-only-not-secret")
os.environ.setdefault("DATABASE_URL", "postgresql://unset@localhost/unset")

from chatsite.settings import *  # noqa: F403
from chatsite.settings import PGSSE as _PGSSE

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

# Many users post at once: the chat's limit would refuse most of the steady load.
CHAT_RATE_LIMIT = (10_000, 1.0)

PGSSE = {
    **_PGSSE,
    "METRICS_ALLOW_FROM": ["127.0.0.1"],
    "MAX_BUFFERED_BYTES": 64 * 1024,
    "WRITE_TIMEOUT": 5.0,
    "RETRY_MS": 500,
    "SWEEP_INTERVAL": 2.0,
    "HEALTH_INTERVAL": 3.0,
    "HEALTH_TIMEOUT": 2.0,
    "RECONNECT_MAX_DELAY": 1.0,
    "MAX_STREAMS_PER_USER": None,
    "SETUP_CONCURRENCY": 8,
    "PRUNE_INTERVAL": None,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "pgsse.logging.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        # One line per stream opened and closed (the report counts closes by reason), one
        # per listener reconnect.
        "pgsse": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
