"""pgsse.testing.StreamClient: streams opened through the project's own ASGI application,
in Django's TestCase, TransactionTestCase and pytest-django, on the real hub and database.

The project here is pgsse's test project (tests/urls.py), wrapped (tests/asgi.py) and not
(tests/asgi_unwrapped.py).
"""

from __future__ import annotations

import os
import time

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import TestCase, TransactionTestCase, override_settings

from pgsse import publish
from pgsse.hub import current_hub
from pgsse.position import canonical_channels, format_position
from pgsse.testing import StreamClient
from tests import asgi, asgi_unwrapped


def pgsse_connections_of_this_process() -> list[str]:
    """application_name of this process's pgsse connections, as PostgreSQL sees them
    (from a connection of its own: the test's may be inside a transaction)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE %s",
            (f"pgsse-% %:{os.getpid()}",),
        ).fetchall()
    return sorted(name for (name,) in rows)


def none_left(timeout: float = 30) -> list[str]:
    """PostgreSQL notices a closed connection a moment after the client closes it."""
    deadline = time.monotonic() + timeout
    while (left := pgsse_connections_of_this_process()) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling PostgreSQL's view: there is nothing to await
    return left


@override_settings(ROOT_URLCONF="tests.urls")
class InATransactionTestCase(TransactionTestCase):
    """Events commit: the stream receives them, as a browser would."""

    async def test_a_stream_receives_what_is_published_and_the_hub_closes_after(self) -> None:
        async with StreamClient(asgi.application) as client:
            hub = current_hub()
            assert hub is not None
            assert not hub.closed
            async with client.stream("/events/room:tx/") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                position = await stream.until_live()
                await sync_to_async(publish)("room:tx", "said", {"text": "hi"})
                event = await stream.next_event()
        assert (event.type, event.json()) == ("said", {"text": "hi"})
        assert event.id == format_position(canonical_channels(["room:tx"]), {"room:tx": 1})
        assert position == format_position(canonical_channels(["room:tx"]), {"room:tx": 0})
        assert hub.closed  # the client owned it: lifespan shutdown closed it
        assert await sync_to_async(none_left)() == []

    async def test_a_stream_resumes_from_a_position(self) -> None:
        for n in range(3):
            await sync_to_async(publish)("room:resume", "n", n)
        start = format_position(canonical_channels(["room:resume"]), {"room:resume": 1})
        async with (
            StreamClient(asgi.application) as client,
            client.stream("/events/room:resume/", last_event_id=start) as stream,
        ):
            events = await stream.events(2)
        assert [event.json() for event in events] == [1, 2]

    async def test_an_application_without_the_wrapper_works_too(self) -> None:
        async with StreamClient(asgi_unwrapped.application) as client:
            async with client.stream("/events/room:plain/") as stream:
                await stream.until_live()
                await sync_to_async(publish)("room:plain", "e", 1)
                assert (await stream.next_event()).json() == 1
            hub = current_hub()
        assert hub is not None
        assert hub.closed
        assert await sync_to_async(none_left)() == []

    async def test_waiting_for_an_event_that_never_comes_says_what_came(self) -> None:
        async with (
            StreamClient(asgi.application) as client,
            client.stream("/events/room:quiet/") as stream,
        ):
            with pytest.raises(TimeoutError, match=r"waited 0\.2 s for an event"):
                await stream.next_event(timeout=0.2)


@override_settings(ROOT_URLCONF="tests.urls")
class InATestCase(TestCase):
    """The request phase runs on the test's own connection: it sees the test's data."""

    member: User
    stranger: User

    @classmethod
    def setUpTestData(cls) -> None:
        cls.member = User.objects.create_user("ada")
        cls.stranger = User.objects.create_user("bob")
        Group.objects.create(name="team:red").user_set.add(cls.member)

    async def test_a_member_opens_the_stream_a_stranger_is_refused(self) -> None:
        async with StreamClient(asgi.application) as client:
            await client.assert_refused("/member/team:red/", 403, "may not read")
            await client.force_login(self.stranger)
            await client.assert_refused("/member/team:red/", 403, "may not read")
            await client.force_login(self.member)
            async with client.stream("/member/team:red/") as stream:
                assert await stream.until_live()

    async def test_refusals_in_the_projects_own_format(self) -> None:
        async with StreamClient(asgi.application) as client:
            refused = await client.assert_refused("/json/?room=closed", 403)
            assert refused.json() == {"error": "Room 'closed' is closed."}
            missing = await client.assert_refused("/json/?room=nowhere", 404)
            assert missing.headers["content-type"] == "application/json"

    async def test_a_stream_that_opens_is_not_a_refusal(self) -> None:
        async with StreamClient(asgi.application) as client:
            with pytest.raises(AssertionError, match="opened a stream; expected a 403"):
                await client.assert_refused("/events/room:open/", 403)


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF="tests.urls")
async def test_pytest_django_with_transaction_true() -> None:
    async with StreamClient(asgi.application) as client:
        await client.assert_refused("/events/secret:x/", 403)
        async with client.stream("/events/room:pytest/") as stream:
            await stream.until_live()
            await sync_to_async(publish)("room:pytest", "e", "from pytest")
            assert (await stream.next_event()).data == '"from pytest"'
    assert await sync_to_async(none_left)() == []
