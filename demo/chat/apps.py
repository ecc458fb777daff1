from __future__ import annotations

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connect the receivers: publishing every message change, telling users their
        # memberships ended, and ending the streams of those whose access is taken away;
        # telling pages of rooms, members and names that change (the live sidebar); and
        # deleting an attachment's stored files with its row.
        from chat import (  # noqa: F401
            attachments,
            directory,
            members,
            own_channel,
            profiles,
            revocation,
            signals,
        )
