"""``JsonFormatter``: one JSON object per log line, ``extra=`` fields included.

pgsse logs through the standard library (loggers under ``pgsse``) and passes the facts of
each line as ``extra=`` fields (a stream's channels, user key, duration, events sent and
why it ended; a listener reconnect's outage and the gap it filled). This formatter writes
them as JSON, for log pipelines that index fields; it is plain ``logging``, configured in
``LOGGING``::

    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "pgsse.logging.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
        "loggers": {"pgsse": {"handlers": ["console"], "level": "INFO"}},
    }

It formats any logger's records, not only pgsse's.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter"]

# What every LogRecord carries: anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...extra fields, "exception"}`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: a value JSON has no type for (a datetime, an exception) as text.
        return json.dumps(line, ensure_ascii=False, default=str)
