from __future__ import annotations

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connect the receivers: publishing every message change, telling users their
        # memberships ended, and ending the streams of those whose access is taken away;
        # telling pages of rooms, members and names that change (the live sidebar).
        from chat import directory, members, own_channel, profiles, revocation, signals  # noqa: F401
