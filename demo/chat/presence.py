"""Who is here: each open page sends a heartbeat; a change of the set of users is published.

- A page POSTs a heartbeat every ``CHAT_PRESENCE_HEARTBEAT`` seconds with a random tab id,
  and a leave beacon when it is hidden for good (``pagehide``).
- A tab silent for ``CHAT_PRESENCE_TIMEOUT`` seconds has gone: every heartbeat in the room
  deletes such tabs, so a crashed tab leaves within TIMEOUT + HEARTBEAT seconds.
- A user is present once however many tabs they have open.
- A user whose access to a private room is taken away leaves it at once, every tab
  (:func:`drop`, called by :mod:`chat.revocation` in the same transaction); so does a
  user who logs out, or whose account is deleted, from every room (:func:`drop_everywhere`).
- The room's row is locked while its presence changes, so two changes cannot both
  publish the same transition or miss one; the set last published is kept in
  :class:`PresenceSnapshot`, so expiry noticed by anyone is published exactly once.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

import pgsse
from chat import conf
from chat.models import Presence, PresenceSnapshot, Room
from chat.profiles import people_named

PRESENCE_EVENT = "presence"


class TooManyTabs(Exception):
    """A heartbeat with a new tab id from a user who has the most tabs allowed already."""

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"At most {limit} open pages per user and room count as present; "
            "close one, or wait for a closed one to expire."
        )
        self.retry_after = retry_after


def present_users(room: Room) -> list[str]:
    """Usernames with a live tab in ``room``, sorted."""
    cutoff = timezone.now() - timedelta(seconds=conf.get("CHAT_PRESENCE_TIMEOUT"))
    names = (
        Presence.objects.filter(room=room, last_seen__gt=cutoff)
        .values_list("user__username", flat=True)
        .distinct()
    )
    return sorted(names)


def _beat(room: Room, user: AbstractBaseUser, tab: str, now: datetime) -> None:
    updated = Presence.objects.filter(room=room, user_id=user.pk, tab=tab).update(last_seen=now)
    if updated:
        return
    # A new tab: made-up tab ids must not grow the table without bound.
    limit = conf.get("CHAT_PRESENCE_MAX_TABS")
    if Presence.objects.filter(room=room, user_id=user.pk).count() >= limit:
        raise TooManyTabs(limit, math.ceil(conf.get("CHAT_PRESENCE_TIMEOUT")))
    Presence.objects.create(room=room, user_id=user.pk, tab=tab, last_seen=now)


def update(room: Room, user: AbstractBaseUser | None, tab: str, *, leaving: bool = False) -> None:
    """Record a heartbeat (or a leave) of ``user``'s ``tab``; publish if the set changed.

    ``user`` None only sweeps expired tabs (an anonymous reader's heartbeat).
    """
    with transaction.atomic():
        _lock(room)
        now = timezone.now()
        if user is not None and leaving:
            Presence.objects.filter(room=room, user_id=user.pk, tab=tab).delete()
        cutoff = now - timedelta(seconds=conf.get("CHAT_PRESENCE_TIMEOUT"))
        Presence.objects.filter(room=room, last_seen__lte=cutoff).delete()
        if user is not None and not leaving:
            _beat(room, user, tab, now)
        _publish_if_changed(room)


def drop(room: Room, user_pk: Any) -> None:
    """Take every tab of one user out of ``room`` at once (their access was taken away),
    and publish the new set, in the caller's transaction."""
    with transaction.atomic():
        _lock(room)
        Presence.objects.filter(room=room, user_id=user_pk).delete()
        _publish_if_changed(room)


def drop_everywhere(user_pk: Any) -> None:
    """Take every tab of one user out of every room at once (they logged out, or their
    account is going), in the caller's transaction. Rooms are locked in pk order, so two
    of these never wait for each other in a circle. Another session of the user, still
    logged in, comes back with its next heartbeat (its pages send one when their stream
    reconnects)."""
    rooms = Presence.objects.filter(user_id=user_pk).values_list("room_id", flat=True)
    for room in Room.objects.filter(pk__in=set(rooms)).order_by("pk"):
        drop(room, user_pk)


def _lock(room: Room) -> None:
    # Every change of a room's presence holds its row until commit: see the module's doc.
    Room.objects.select_for_update().filter(pk=room.pk).exists()


def _publish_if_changed(room: Room) -> None:
    users = present_users(room)
    snapshot, _ = PresenceSnapshot.objects.get_or_create(room=room)
    if snapshot.users != users:
        snapshot.users = users
        snapshot.save(update_fields=["users"])
        # With their display names, for pages that never showed these people yet.
        names = {username: p.name for username, p in people_named(users).items()}
        pgsse.publish(room.presence_channel, PRESENCE_EVENT, {"users": users, "names": names})
