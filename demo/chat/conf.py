"""The chat's own settings, read from Django settings with these defaults (see docs/chat.md)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

#: Every write's limits: ``action: (per user, per client address, seconds)``. ``None``
#: leaves that side unlimited. Override some actions with ``CHAT_RATE_LIMITS`` (a dict of
#: the same shape); the others keep these.
RATE_LIMITS: dict[str, tuple[int | None, int | None, float]] = {
    # Messages, in all rooms.
    "message": (10, 30, 10.0),
    # Edits and deletes of messages.
    "edit": (10, 30, 10.0),
    # Reactions added or taken back.
    "reaction": (20, 60, 10.0),
    # Searches (each reads the messages of every room one may read).
    "search": (20, 60, 10.0),
    # New rooms.
    "room": (5, 10, 60.0),
    # Presence heartbeats and leaves (a page beats every 10 s, and when shown again).
    "presence": (20, 60, 10.0),
    # Typing notices, per user *and room* (and per address, all rooms).
    "typing": (1, 20, 2.0),
    # Read marks (a page marks a room read as messages arrive).
    "read": (30, 90, 10.0),
    # Join, leave, invite.
    "membership": (10, 30, 10.0),
    # A room owner's removals of members.
    "removal": (10, 30, 10.0),
    # Direct conversations started (or reopened by naming the same people).
    "direct": (10, 30, 60.0),
    # Room settings: renames, topics, ownership handed over, deletions.
    "settings": (10, 30, 60.0),
    # Profile changes (display name, e-mail address).
    "profile": (10, 30, 60.0),
    # New accounts, per client address.
    "signup": (None, 5, 600.0),
    # Password-reset e-mails asked for, per client address (whatever the address given).
    "password_reset": (None, 5, 600.0),
    # Notes of the htmx recipe's board (when it is served), per client address.
    "note": (None, 10, 10.0),
    # Files posted with messages (each file counts one).
    "upload": (20, 60, 60.0),
}

DEFAULTS: dict[str, Any] = {
    # Anonymous visitors may read public rooms (pages, history, streams).
    "CHAT_ANONYMOUS_READ": False,
    # The htmx recipe's notice board (anonymous posting) is served under /htmx/.
    "CHAT_HTMX_RECIPE": False,
    "CHAT_RATE_LIMITS": {},
    # Seconds between presence heartbeats of an open page, and seconds of silence after
    # which a page counts as gone. A tab closed without its leave beacon (crash, lost
    # network) leaves within TIMEOUT + HEARTBEAT seconds: 30 s with these defaults.
    "CHAT_PRESENCE_HEARTBEAT": 10.0,
    "CHAT_PRESENCE_TIMEOUT": 20.0,
    # Open tabs one user may have present in one room (a heartbeat with a new tab id
    # beyond that is answered 429).
    "CHAT_PRESENCE_MAX_TABS": 10,
    # Rooms a page follows live besides the one it shows (the sidebar's and the room
    # list's counts): the user's most active rooms. The others' counts are refreshed
    # every CHAT_UNREAD_REFRESH seconds while the page is visible, and when it is shown.
    "CHAT_LIVE_ROOMS": 11,
    "CHAT_UNREAD_REFRESH": 60.0,
    # Runs of a request whose transaction PostgreSQL ended for colliding with another (a
    # deadlock, a serialization failure), in all; past that the answer is 503 "busy".
    "CHAT_CONFLICT_ATTEMPTS": 3,
    # People in one direct conversation, its starter included (more: a private room).
    "CHAT_DIRECT_MAX_PEOPLE": 9,
    # Attachments: the largest file, in bytes; files per message; the most pixels an image
    # may have (a larger one is refused: decoding it would take too much memory).
    "CHAT_ATTACHMENT_MAX_BYTES": 10 * 1024 * 1024,
    "CHAT_ATTACHMENTS_PER_MESSAGE": 4,
    "CHAT_IMAGE_MAX_PIXELS": 50_000_000,
}

#: What a request may carry besides its files (the text, the form's fields, multipart's
#: own framing), in bytes.
REQUEST_OVERHEAD = 1024 * 1024

#: Channels a room page's stream has of its own: the room's three, the user's and the
#: directory (chat.directory).
ROOM_PAGE_CHANNELS = 5


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])


def live_rooms() -> int:
    """``CHAT_LIVE_ROOMS``, within what one pgsse stream may follow beside a room page's
    own channels (pgsse's ``MAX_CHANNELS_PER_STREAM``)."""
    from pgsse.conf import get_settings

    room = get_settings().MAX_CHANNELS_PER_STREAM - ROOM_PAGE_CHANNELS
    return max(0, min(int(get("CHAT_LIVE_ROOMS")), room))


def rate_limit(action: str) -> tuple[int | None, int | None, float]:
    overrides: dict[str, tuple[int | None, int | None, float]] = get("CHAT_RATE_LIMITS")
    return overrides.get(action, RATE_LIMITS[action])


def max_request_bytes() -> int:
    """The largest request body the chat reads: a message with its files at their limit.

    Larger bodies are refused before Django reads them (chatsite.body_limit): Django
    would otherwise spool any body whole to disk before a view could look at it.
    """
    files = int(get("CHAT_ATTACHMENTS_PER_MESSAGE")) * int(get("CHAT_ATTACHMENT_MAX_BYTES"))
    return files + REQUEST_OVERHEAD
