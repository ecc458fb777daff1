from __future__ import annotations

from django.apps import AppConfig


class PgsseConfig(AppConfig):
    name = "pgsse"
    verbose_name = "pgsse event log"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from pgsse import checks  # noqa: F401  (registers the system checks)
