"""Readers of the chat's room stream: one user and one session each, made in the database.

No HTTP logins (thousands would take minutes): users are bulk-created with unusable
passwords, and each gets a session written the way Django's ``SessionStore`` writes one,
with the keys ``django.contrib.auth.login`` would set. The server then sees ordinary
session cookies. One user per stream, as real readers would be, so pgsse's per-user
stream cap (``MAX_STREAMS_PER_USER``, 32) is never reached and is left as it is.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bench.servers import CHAT_ROOM

#: Users are named ``bench-reader-<n>``.
PREFIX = "bench-reader-"


def chat_channel() -> str:
    """The channel of the bench room's messages (rooms' channels are named by primary key)."""
    from chat.models import Room

    room, _ = Room.objects.get_or_create(slug=CHAT_ROOM, defaults={"name": "Bench"})
    return room.channel


def create_readers(count: int, path: Path) -> Path:
    """Make ``count`` users with sessions and the bench room; write their cookies to ``path``."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    from chat.models import Room

    Room.objects.get_or_create(slug=CHAT_ROOM, defaults={"name": "Bench"})
    existing = User.objects.filter(username__startswith=PREFIX).count()
    User.objects.bulk_create(
        [User(username=f"{PREFIX}{n}", password="!") for n in range(existing, count)],
        batch_size=2000,
    )
    users = list(User.objects.filter(username__startswith=PREFIX).order_by("id")[:count])
    store = SessionStore()
    expires = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    sessions = []
    for user in users:
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        sessions.append(
            Session(
                session_key=get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789"),
                session_data=store.encode(data),
                expire_date=expires,
            )
        )
    Session.objects.bulk_create(sessions, batch_size=2000)
    path.write_text(
        "\n".join(f"{settings.SESSION_COOKIE_NAME}={s.session_key}" for s in sessions) + "\n"
    )
    return path
