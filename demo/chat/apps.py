from __future__ import annotations

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connect the receivers: publishing every message change, telling users their
        # memberships ended, ending the streams of those whose access is taken away, and
        # deleting an attachment's stored files with its row.
        from chat import attachments, own_channel, revocation, signals  # noqa: F401
