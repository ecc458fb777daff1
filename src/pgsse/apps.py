from __future__ import annotations

from django.apps import AppConfig


class PgsseConfig(AppConfig):
    name = "pgsse"
    verbose_name = "pgsse event log"
    default_auto_field = "django.db.models.BigAutoField"
