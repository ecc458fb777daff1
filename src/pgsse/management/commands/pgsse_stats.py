"""``manage.py pgsse_stats``: the event log and the listeners, as PostgreSQL sees them.

- the channels in the log;
- per channel prefix (the name up to its first ``:``): channels, events retained, the
  oldest event, and the retention rule that applies;
- ``pg_notification_queue_usage()``;
- the listener connections in ``pg_stat_activity`` (pgsse names them
  ``pgsse-listener <host>:<pid>``), and the log readers.

``--json`` prints the same as one JSON object. Reads only; counting the retained events
scans the log once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connections
from django.template.defaultfilters import pluralize
from django.utils import timezone

from pgsse.conf import get_settings
from pgsse.retention import Rule, rule_for

CHANNELS_SQL = "SELECT count(*) FROM pgsse_channel"

PREFIXES_SQL = """
SELECT prefix, count(DISTINCT channel), count(*), min(created_at) FROM (
    SELECT channel, created_at,
        CASE WHEN position(':' IN channel) > 0 THEN split_part(channel, ':', 1) || ':'
        ELSE '' END AS prefix
    FROM pgsse_event
) AS events
GROUP BY prefix ORDER BY prefix
"""

QUEUE_SQL = "SELECT pg_notification_queue_usage()"

# Every database's pgsse connections: several projects may share one server.
CONNECTIONS_SQL = """
SELECT application_name, pid, datname, state, backend_start, client_addr::text
FROM pg_stat_activity
WHERE application_name LIKE 'pgsse-listener %%' OR application_name LIKE 'pgsse-reader %%'
ORDER BY application_name, backend_start
"""


class Command(BaseCommand):
    help = (
        "Show the pgsse event log (channels, retained and oldest events per channel prefix), "
        "the NOTIFY queue usage and the listener connections."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = gather(get_settings().DATABASE)
        if options["json"]:
            self.stdout.write(json.dumps(report, default=_json_value, indent=2))
        else:
            self.stdout.write(as_text(report))


def gather(alias: str) -> dict[str, Any]:
    """What the command shows, read from the database ``alias``."""
    with connections[alias].cursor() as cursor:
        cursor.execute(CHANNELS_SQL)
        channels = cursor.fetchone()[0]
        cursor.execute(PREFIXES_SQL)
        prefixes = [
            {
                "prefix": prefix,
                "channels": count,
                "events": events,
                "oldest": oldest,
                "retention": _describe(rule_for(prefix)),
            }
            for prefix, count, events, oldest in cursor.fetchall()
        ]
        cursor.execute(QUEUE_SQL)
        queue_usage = float(cursor.fetchone()[0])
        cursor.execute(CONNECTIONS_SQL)
        found = [
            dict(zip(("name", "pid", "database", "state", "since", "client"), row, strict=True))
            for row in cursor.fetchall()
        ]
    return {
        "channels": channels,
        "prefixes": prefixes,
        "notification_queue_usage": queue_usage,
        "listeners": [c for c in found if c["name"].startswith("pgsse-listener ")],
        "readers": [c for c in found if c["name"].startswith("pgsse-reader ")],
    }


def as_text(report: dict[str, Any]) -> str:
    now = timezone.now()
    lines = [f"Channels in the log: {report['channels']}", ""]
    rows = [("prefix", "channels", "events", "oldest event", "retention")]
    for entry in report["prefixes"]:
        oldest = entry["oldest"]
        age = f"{oldest:%Y-%m-%d %H:%M:%S} ({_age(now, oldest)} ago)" if oldest else "-"
        rows.append(
            (
                entry["prefix"] or "(none)",
                str(entry["channels"]),
                str(entry["events"]),
                age,
                entry["retention"],
            )
        )
    lines += _table(rows) if report["prefixes"] else ["No events retained."]
    lines += ["", f"NOTIFY queue usage: {report['notification_queue_usage']:.4%}", ""]
    listeners = report["listeners"]
    lines.append(f"Listener connections: {len(listeners)}; log readers: {len(report['readers'])}")
    rows = [("application_name", "backend pid", "database", "state", "connected for")]
    for conn in listeners:
        since = _age(now, conn["since"]) if conn["since"] else "-"
        rows.append((conn["name"], str(conn["pid"]), conn["database"], conn["state"], since))
    if listeners:
        lines += _table(rows)
    return "\n".join(lines)


def _describe(rule: Rule) -> str:
    age = "forever" if rule.max_age is None else f"{_duration(rule.max_age)}"
    count = "all events" if rule.max_events is None else f"{rule.max_events:,} event"
    if rule.max_events is not None:
        count += pluralize(rule.max_events)
    return f"keep {count} for {age}" + (", lossy" if rule.lossy else "")


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _age(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _json_value(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
