"""Emoji reactions to messages.

A user adds an emoji to a message, or takes it back; each emoji counts once per user. A
change is one event on the room's channel, ``reaction``, whatever the room's size::

    {"id": <message id>, "room", "room_id", "user": <who>, "emoji", "added": true|false,
     "reactions": [{"emoji", "count", "users": [the first NAMES_SHOWN]}]}

``reactions`` is the message's whole summary after the change: the message's row is
locked while its reactions change, so the events of one message follow commit order and
a page shows what the newest says. Whether *you* reacted is per user, so it is not in the
summary: answers carry ``mine`` per emoji, and a page follows its user's own changes from
the events' ``user``. The events carry their key, ``reactions:<message id>``: a deleted
message's reactions go from the log with it (chat.signals).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count

import pgsse
from chat.errors import ApiError
from chat.models import Message, Reaction, Room

EVENT = "reaction"
#: Different emoji one message may carry (Slack allows 23); each shows at most
#: ``NAMES_SHOWN`` of the people who reacted, then "and N others". Both bound an event.
MAX_KINDS = 20
NAMES_SHOWN = 10
#: Code points in one emoji (a family, a flag with its tags, a skin tone).
MAX_EMOJI_CODE_POINTS = 10
#: What may join the symbols of one emoji: joiner, variation selectors, keycap, tags.
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f", "\u20e3"}


def event_key(message_id: int) -> str:
    return f"reactions:{message_id}"


def clean_emoji(value: object) -> str:
    """``value`` if it is one emoji (symbols, with their joiners and modifiers), else 400."""
    if not isinstance(value, str) or not value:
        raise ApiError(400, 'Send the reaction as {"emoji": "👍"}.')
    if len(value) > MAX_EMOJI_CODE_POINTS or not all(_emoji_part(c) for c in value):
        raise ApiError(400, "A reaction is one emoji, like 👍 or 🎉: no letters, digits or spaces.")
    if not any(unicodedata.category(c) == "So" for c in value):
        raise ApiError(400, "A reaction is one emoji, like 👍 or 🎉.")
    return value


def _emoji_part(char: str) -> bool:
    category = unicodedata.category(char)
    tag = "\U000e0020" <= char <= "\U000e007f"
    return category in ("So", "Sk") or char in _JOINERS or tag


def summaries(message_ids: Iterable[int], user: Any = None) -> dict[int, list[dict[str, Any]]]:
    """Each message's reactions, in the order their emoji first came:
    ``[{"emoji", "count", "users", "mine"}]`` (``mine``: whether ``user`` reacted so)."""
    ids = list(set(message_ids))
    if not ids:
        return {}
    rows = (
        Reaction.objects.filter(message_id__in=ids)
        .order_by("message_id", "id")
        .values_list("message_id", "emoji", "user_id", "user__username")
    )
    found: dict[int, dict[str, dict[str, Any]]] = {}
    me = user.pk if user is not None and user.is_authenticated else None
    for message_id, emoji, user_id, username in rows:
        kinds = found.setdefault(message_id, {})
        entry = kinds.setdefault(emoji, {"emoji": emoji, "count": 0, "users": [], "mine": False})
        entry["count"] += 1
        if len(entry["users"]) < NAMES_SHOWN:
            entry["users"].append(username)
        entry["mine"] = entry["mine"] or user_id == me
    return {message_id: list(kinds.values()) for message_id, kinds in found.items()}


def shared(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A summary as everyone may see it: without ``mine``."""
    return [{key: value for key, value in entry.items() if key != "mine"} for entry in summary]


def change(room: Room, message_id: int, user: Any, emoji: str, *, add: bool) -> dict[str, Any]:
    """Add or take back ``user``'s ``emoji`` on a message of ``room``, and publish the
    message's new summary. Returns what the API answers. Call it in a transaction."""
    message = Message.objects.select_for_update().filter(room=room, id=message_id).first()
    if message is None:
        raise ApiError(404, f"There is no message {message_id} in this room.")
    mine = Reaction.objects.filter(message=message, user_id=user.pk, emoji=emoji)
    changed: bool
    if add:
        if mine.exists():
            changed = False
        else:
            kinds = Reaction.objects.filter(message=message).aggregate(
                kinds=Count("emoji", distinct=True)
            )["kinds"]
            known = Reaction.objects.filter(message=message, emoji=emoji).exists()
            if kinds >= MAX_KINDS and not known:
                raise ApiError(400, f"A message carries at most {MAX_KINDS} different reactions.")
            try:
                with transaction.atomic():
                    Reaction.objects.create(message=message, user_id=user.pk, emoji=emoji)
            except IntegrityError:  # pragma: no cover - the row lock above serializes
                pass
            changed = True
    else:
        changed = mine.delete()[0] > 0
    summary = summaries([message.id], user).get(message.id, [])
    if changed:
        data = {
            "id": message.id,
            "room": room.slug,
            "room_id": room.pk,
            "user": user.get_username(),
            "emoji": emoji,
            "added": add,
            "reactions": shared(summary),
        }
        pgsse.publish(room.channel, EVENT, data, key=event_key(message.id))
    return {"id": message.id, "changed": changed, "reactions": summary}
