"""Access taken away ends streams at once, on every server process.

A stream is authorized when it opens and then lives for as long as the page stays open.
Whoever takes access away, the page, the API, the admin or a cascade, goes through one of
these model and auth signals, which ask pgsse to end the affected streams
(``pgsse.close_streams``) in the same transaction as the change. The streams end with
``retry:`` when it commits, on every worker, and their reconnect is authorized afresh:
404 for a private room the user may no longer see, 401 once logged out.

- A membership of a private room deleted (leaving, the owner's removal, the admin, the
  user's deletion): that user's streams of the room end, and their tabs leave its
  presence in the same transaction, so the others' "Here now" changes with the close.
- A room deleted: every stream of it ends (its memberships' deletions leave it to this).
- A room made private in the admin: every stream of it ends; its members get back in.
- A room given another slug in the admin: every stream of it ends; the old slug now
  names no room (404).
- An account deleted: every stream of that user ends, and their tabs leave every room's
  presence.
- An account deactivated, or its password changed (the admin, ``changepassword``, any
  code that saves a new password): every stream of that user ends. The reconnect of a
  session that no longer authenticates (every session but the one that changed its own
  password, which Django keeps) is refused with 401.
- A new API token issued (``chat_token``), or the token deleted: every stream of that
  user ends, so that no stream lives on with the old token. Streams opened with the
  session reconnect at once, still logged in.
- A log-out: every stream of that user ends (those of the user's other sessions reconnect
  at once, still logged in), and their tabs leave every room's presence at once (the
  other sessions' pages come back with the heartbeat they send on reconnecting).

What no signal reports (an ``UPDATE`` in SQL, ``QuerySet.update()``) is caught by pgsse's
periodic re-check (``REAUTHORIZE_INTERVAL``, five minutes by default).

Lock order: a room's row first (presence, which locks it too), pgsse's control channel
last (the close request: one row for every close request, held until commit), so that
these transactions wait for each other rather than deadlock.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

import pgsse
from chat import presence
from chat.models import ApiToken, Membership, Room


def _room_going_away(origin: object) -> bool:
    """Whether a deletion started from rooms (their memberships go with them)."""
    if isinstance(origin, QuerySet):
        return origin.model is Room
    return isinstance(origin, Room)


@receiver(post_delete, sender=Membership)
def membership_deleted(sender: type[Membership], instance: Membership, **kwargs: Any) -> None:
    if _room_going_away(kwargs.get("origin")):
        return  # room_deleted ends every stream of the room
    room = Room.objects.filter(pk=instance.room_id).first()
    if room is None or not room.private:
        return  # a public room stays readable: nothing was taken away
    presence.drop(room, instance.user_id)
    pgsse.close_streams(user=instance.user_id, channel=room.channel)


@receiver(post_delete, sender=Room)
def room_deleted(sender: type[Room], instance: Room, **kwargs: Any) -> None:
    pgsse.close_streams(channel=instance.channel)


@receiver(post_save, sender=Room)
def room_saved(sender: type[Room], instance: Room, created: bool, **kwargs: Any) -> None:
    if instance.closes_channel is not None:
        pgsse.close_streams(channel=instance.closes_channel)


@receiver(pre_delete, sender=settings.AUTH_USER_MODEL)
def user_deleting(sender: type[Any], instance: Any, **kwargs: Any) -> None:
    # Before the cascade takes their tabs away without a word: the others see them go.
    presence.drop_everywhere(instance.pk)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def user_deleted(sender: type[Any], instance: Any, **kwargs: Any) -> None:
    pgsse.close_streams(user=instance.pk)


#: What a saved account may no longer have: the columns whose change takes access away.
_ACCESS_FIELDS = ("is_active", "password")


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def account_saving(sender: type[Any], instance: Any, **kwargs: Any) -> None:
    """Note whether this save takes access away: one read of the row, and only when the
    save may change what is read (``update_fields`` such as ``last_login`` alone do not)."""
    instance._chat_ends_streams = False
    update_fields = kwargs.get("update_fields")
    if instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and not set(update_fields) & set(_ACCESS_FIELDS):
        return
    before = sender._default_manager.filter(pk=instance.pk).values(*_ACCESS_FIELDS).first()
    if before is not None:
        instance._chat_ends_streams = (before["is_active"] and not instance.is_active) or before[
            "password"
        ] != instance.password


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def account_saved(sender: type[Any], instance: Any, **kwargs: Any) -> None:
    if getattr(instance, "_chat_ends_streams", False):
        instance._chat_ends_streams = False
        pgsse.close_streams(user=instance.pk)


@receiver(post_save, sender=ApiToken)
def token_saved(sender: type[ApiToken], instance: ApiToken, created: bool, **kwargs: Any) -> None:
    if not created:  # a new token replaced the one some streams may have opened with
        pgsse.close_streams(user=instance.user_id)


@receiver(post_delete, sender=ApiToken)
def token_deleted(sender: type[ApiToken], instance: ApiToken, **kwargs: Any) -> None:
    if not _account_going_away(kwargs.get("origin")):
        pgsse.close_streams(user=instance.user_id)


def _account_going_away(origin: object) -> bool:
    """Whether a deletion started from accounts (``user_deleted`` ends their streams)."""
    if isinstance(origin, QuerySet):
        return origin.model is get_user_model()
    return isinstance(origin, get_user_model())


@receiver(user_logged_out)
def logged_out(sender: object, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None and user.pk is not None:
        # Gone from every "Here now" at once, not when their tabs' heartbeats expire.
        presence.drop_everywhere(user.pk)
        pgsse.close_streams(user=user)
