"""``python manage.py chat_prune_files``: delete stored attachment files no message has.

Files are written before their message's transaction commits, and deleted after a
deletion commits: a process that dies in between leaves a file behind. Run this now and
then (daily, from cron or a systemd timer); files younger than ``--grace-minutes`` (60)
are kept, their message may still be on its way.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chat.attachments import ORPHAN_GRACE, prune_orphans


class Command(BaseCommand):
    help = "Delete stored attachment files that no message has (older than the grace time)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace-minutes",
            type=float,
            default=ORPHAN_GRACE.total_seconds() / 60,
            help="keep files younger than this (default: 60)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        pruned = prune_orphans(timedelta(minutes=options["grace_minutes"]))
        for name in pruned:
            self.stdout.write(f"deleted {name}")
        self.stdout.write(f"{len(pruned)} file{'s' if len(pruned) != 1 else ''} deleted.")
