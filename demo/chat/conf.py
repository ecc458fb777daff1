"""The chat's own settings, read from Django settings with these defaults (see docs/chat.md)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Anonymous visitors may read public rooms (pages, history, streams).
    "CHAT_ANONYMOUS_READ": False,
    # At most this many messages per user in this many seconds (all rooms, all workers).
    "CHAT_RATE_LIMIT": (10, 10.0),
    # At most this many typing notices per user and room in this many seconds.
    "CHAT_TYPING_RATE_LIMIT": (1, 2.0),
    # Seconds between presence heartbeats of an open page, and seconds of silence after
    # which a page counts as gone. A tab closed without its leave beacon (crash, lost
    # network) leaves within TIMEOUT + HEARTBEAT seconds: 30 s with these defaults.
    "CHAT_PRESENCE_HEARTBEAT": 10.0,
    "CHAT_PRESENCE_TIMEOUT": 20.0,
}


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])
