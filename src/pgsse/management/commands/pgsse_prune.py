"""``manage.py pgsse_prune``: delete events the retention rules no longer keep."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.template.defaultfilters import pluralize

from pgsse.retention import prune


class Command(BaseCommand):
    help = "Prune the pgsse event log by PGSSE['RETENTION']. Safe while streams are live."

    def handle(self, *args: Any, **options: Any) -> None:
        report = prune()
        if report.skipped:
            self.stdout.write("Another process is pruning; nothing done.")
        else:
            self.stdout.write(
                f"Pruned {report.events_deleted} event{pluralize(report.events_deleted)} from"
                f" {report.channels} channel{pluralize(report.channels)}."
            )
