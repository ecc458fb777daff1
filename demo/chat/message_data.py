"""What the API answers, and the room's events carry, about messages.

A message is ``Message.as_event_data()`` (id, room, user, text, times) plus:

- ``reply_to``: ``{"id", "user", "excerpt"}`` of the message it answers (``excerpt`` in
  answers only, never in events: the log must not keep a text its author may still edit
  or delete; ``{"id", "user": null}`` when that message was deleted), or null;
- ``thread``: ``{"id", "replies", "last_reply_at"}``, the thread the message starts (if it
  has replies) or belongs to (a reply: its thread as this answer or event saw it), or null;
- ``reactions``: ``[{"emoji", "count", "users"}]``, with ``mine`` in answers.

Every function here reads a whole page in a few queries, whatever its length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chat import reactions, threads
from chat.models import Message


def describe(messages: Sequence[Message], room_slug: str, user: Any = None) -> list[dict[str, Any]]:
    """The messages as the API answers them (for ``user``: their own reactions marked)."""
    answered = threads.answered(messages)
    thread_ids = {m.thread_id or m.id for m in messages}
    summaries = threads.summaries(thread_ids)
    reacted = reactions.summaries([m.id for m in messages], user)
    described = []
    for message in messages:
        data = message.as_event_data(room_slug)
        data["reply_to"] = _reply_to(message, answered)
        data["thread"] = summaries.get(message.thread_id or message.id)
        data["reactions"] = reacted.get(message.id, [])
        described.append(data)
    return described


def describe_one(message: Message, room_slug: str, user: Any = None) -> dict[str, Any]:
    return describe([message], room_slug, user)[0]


def _reply_to(message: Message, answered: dict[int, dict[str, Any]]) -> dict[str, Any] | None:
    if message.reply_to_id is None:
        return None
    return answered.get(message.reply_to_id, {"id": message.reply_to_id, "user": None})


def for_event(message: Message, *, created: bool) -> dict[str, Any]:
    """What a ``message_created`` or ``message_updated`` event carries. Call it in the
    change's transaction, after the change: for a reply, it waits for the thread's other
    changes (:func:`chat.threads.lock`), so that the count it carries follows commit order."""
    data = message.as_event_data()
    answered = None
    if message.reply_to_id is not None:
        author = Message.objects.filter(id=message.reply_to_id).values_list("author_name")
        answered = {"id": message.reply_to_id, "user": next(iter(author), (None,))[0]}
    data["reply_to"] = answered
    if message.thread_id is not None:
        threads.lock(message.thread_id)
        data["thread"] = threads.summary(message.thread_id)
    else:
        # A first message: its own row is locked by the change already.
        data["thread"] = None if created else threads.summaries([message.id]).get(message.id)
    found = [] if created else reactions.summaries([message.id]).get(message.id, [])
    data["reactions"] = reactions.shared(found)
    return data


def thread_of_deleted(message: Message) -> dict[str, Any]:
    """What a deleted reply's ``message_deleted`` event says of its thread: the count
    without it."""
    assert message.thread_id is not None
    threads.lock(message.thread_id)
    return threads.summary(message.thread_id)
