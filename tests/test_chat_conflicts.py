"""A real deadlock in the chat's own transaction: run again, or answered 503 "busy".

The deadlock is provoked for real, against the posting transaction's lock order (its
rate-limit key's advisory lock, then the poster's membership row, see chat.api.messages):
the test's own transaction holds the membership row, waits until the post's transaction
waits for it, then asks for the advisory lock the post holds. PostgreSQL ends one of the
two; the post's backend, waiting longer, checks first and is the one ended.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from django.contrib.auth.models import User

from chat.conflicts import conflict_of
from chat.models import Message, Room
from pgsse.models import Event
from tests.chat_accounts import ChatAccount
from tests.postgres import Postgres
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def waiting_on(observer: psycopg.Connection[Any], blocker: int) -> bool:
    row = observer.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
        (blocker,),
    ).fetchone()
    return bool(row and row[0])


@contextlib.contextmanager
def deadlocked_post(pg: Postgres, alice: ChatAccount, text: str) -> Iterator[dict[str, Any]]:
    """Post ``text`` as alice while a transaction of the test deadlocks with the post's.
    Yields the place where the post's answer is put."""
    user = User.objects.get(username=alice.username)
    lobby = Room.objects.get(slug="lobby")
    answer: dict[str, Any] = {}
    with (
        psycopg.connect(pg.url) as blocker,
        psycopg.connect(pg.url, autocommit=True) as observer,
    ):
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            # Never the one PostgreSQL picks (it checks the longest waiter first anyway).
            blocker.execute("SET deadlock_timeout = '10s'")
        # Committed, not rolled back: a rolled-back SET is undone, and the blocker, as
        # quick as the post to check for deadlocks, was sometimes the one picked.
        blocker.commit()
        blocker.execute(
            "SELECT 1 FROM chat_membership WHERE room_id = %s AND user_id = %s FOR UPDATE",
            (lobby.pk, user.pk),
        )
        poster = threading.Thread(target=lambda: answer.update(response=alice.post("lobby", text)))
        poster.start()
        deadline = time.monotonic() + 10
        while not waiting_on(observer, blocker.info.backend_pid):
            assert time.monotonic() < deadline, "the post never waited for the membership row"
            time.sleep(0.01)
        # The post holds its rate-limit key's lock and waits for our row: ask for its lock.
        key = f"message:user:{user.pk}:"
        blocker.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))
        blocker.commit()
        poster.join(timeout=30)
        assert not poster.is_alive()
    yield answer


def created_events(text: str) -> int:
    return Event.objects.filter(type="message_created", data__contains=text).count()


def test_a_deadlocked_post_is_run_again_and_stored_once(
    server: LiveServer, pg: Postgres, caplog: pytest.LogCaptureFixture
) -> None:
    alice = ChatAccount(server.url, "alice")
    alice.say("lobby", "alice is a member")
    with deadlocked_post(pg, alice, "posted through a deadlock") as answer:
        pass
    response: httpx.Response = answer["response"]
    assert response.status_code == 201, response.text
    assert Message.objects.filter(text="posted through a deadlock").count() == 1
    assert created_events("posted through a deadlock") == 1
    retried = [r.getMessage() for r in caplog.records if r.name == "chat.conflicts"]
    assert retried == [
        "POST /rooms/lobby/messages/: a deadlock (attempt 1 of 3), running it again"
    ], retried
    alice.close()


def test_a_deadlock_past_the_last_attempt_is_answered_busy(
    server: LiveServer, pg: Postgres, settings: Any
) -> None:
    settings.CHAT_CONFLICT_ATTEMPTS = 1
    alice = ChatAccount(server.url, "alice")
    alice.say("lobby", "alice is a member")
    with deadlocked_post(pg, alice, "lost to a deadlock") as answer:
        pass
    response: httpx.Response = answer["response"]
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json() == {
        "error": "The server is busy: this change collided with others made at the same "
        "moment (a deadlock) and was not saved. Try again."
    }
    assert not Message.objects.filter(text="lost to a deadlock").exists()
    assert created_events("lost to a deadlock") == 0
    alice.close()


def test_only_collisions_are_taken_for_collisions() -> None:
    deadlock = psycopg.errors.DeadlockDetected("deadlock detected")
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = psycopg.errors.SerializationFailure("could not serialize")
    assert conflict_of(deadlock) == "a deadlock"
    assert conflict_of(wrapped) == "a serialization failure"
    assert conflict_of(psycopg.OperationalError("connection refused")) is None
