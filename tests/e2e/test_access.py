"""Access that stays true on long streams, and safe defaults (real servers, real PostgreSQL).

- close_streams() ends a user's streams on every process, and their reconnect is refused
  once the access is gone; other users' streams go on;
- a maximum age ends streams, which resume with nothing lost;
- a periodic re-check ends a stream whose access was taken away behind pgsse's back;
- deny by default, WSGI answered at once, process and per-user caps;
- what the view's hooks see: a fixed channel list, a project's own authentication middleware.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.test import Client, override_settings

import pgsse
from pgsse.hub import Hub
from tests.clients import ResumingReader, StreamReader, open_stream, stream_client
from tests.postgres import Postgres
from tests.processes import ServerProcess, project_worker
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

publish = sync_to_async(pgsse.publish)


@pytest.fixture
def two_workers(transactional_db: None, pg: Postgres) -> Iterator[list[ServerProcess]]:
    """Two workers of the test project (tests/urls.py, wrapped)."""
    servers = [project_worker(pg.url) for _ in range(2)]
    try:
        yield [server.start() for server in servers]
    finally:
        for server in servers:
            server.kill()


@sync_to_async
def member(username: str, *groups: str) -> tuple[User, str]:
    """A user in ``groups``, and the session cookie of a browser logged in as them."""
    user = User.objects.create_user(username, password="x-long-password-1")
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    browser = Client()
    browser.force_login(user)
    return user, browser.cookies["sessionid"].value


@asynccontextmanager
async def logged_in(base_url: str, session: str) -> AsyncIterator[httpx.AsyncClient]:
    async with stream_client(base_url) as client:
        client.cookies.set("sessionid", session)
        yield client


def live(reader: StreamReader) -> bool:
    return bool(reader.last_id)


@sync_to_async
def revoke(user: User, group: str, *, close: bool) -> None:
    """Take ``user`` out of ``group``, closing their streams of it in the same transaction."""
    with transaction.atomic():
        user.groups.remove(Group.objects.get(name=group))
        if close:
            pgsse.close_streams(user=user, channel=group)


async def test_closing_a_users_streams_reaches_the_other_worker_and_the_reconnect_is_refused(
    two_workers: list[ServerProcess],
) -> None:
    first, second = two_workers
    ada, ada_session = await member("ada", "room:x", "room:y")
    _, bob_session = await member("bob", "room:x")
    async with (
        logged_in(second.url, ada_session) as ada_client,
        logged_in(first.url, bob_session) as bob_client,
        open_stream(ada_client, "/member/room:x/") as ada_x,
        open_stream(ada_client, "/member/room:y/") as ada_y,
        open_stream(bob_client, "/member/room:x/") as bob_x,
    ):
        for reader in (ada_x, ada_y, bob_x):
            await reader.wait_for(live)
        started = time.monotonic()
        await revoke(ada, "room:x", close=True)  # requested through the *first* worker's DB
        await ada_x.wait_for(lambda r: r.ended, timeout=2)
        assert time.monotonic() - started < 2
        refused = await ada_client.get("/member/room:x/")
        assert refused.status_code == 403
        # Her other channel and the other member are untouched.
        await publish("room:x", "e", "for members")
        await publish("room:y", "e", "for ada")
        await bob_x.wait_for(lambda r: len(r.of_type("e")) == 1)
        await ada_y.wait_for(lambda r: len(r.of_type("e")) == 1)
        assert not ada_y.ended


async def test_closing_all_of_a_users_streams_ends_them_on_every_worker(
    two_workers: list[ServerProcess],
) -> None:
    ada, session = await member("ada", "room:x", "room:y")
    async with (
        logged_in(two_workers[0].url, session) as on_first,
        logged_in(two_workers[1].url, session) as on_second,
        open_stream(on_first, "/member/room:x/") as one,
        open_stream(on_second, "/member/room:y/") as two,
    ):
        await one.wait_for(live)
        await two.wait_for(live)
        await sync_to_async(pgsse.close_streams)(user=ada)  # a logout, say
        for reader in (one, two):
            await reader.wait_for(lambda r: r.ended, timeout=2)
        # Access itself was not taken away: the reconnect is accepted.
        async with open_stream(on_first, "/member/room:x/") as again:
            await again.wait_for(live)


async def test_a_close_request_rolled_back_closes_nothing(stream_server: LiveServer) -> None:
    ada, session = await member("ada", "room:x")

    @sync_to_async
    def close_then_roll_back() -> None:
        try:
            with transaction.atomic():
                pgsse.close_streams(user=ada)
                raise RuntimeError("changed our mind")
        except RuntimeError:
            pass

    async with (
        logged_in(stream_server.url, session) as client,
        open_stream(client, "/member/room:x/") as reader,
    ):
        await reader.wait_for(live)
        await close_then_roll_back()
        await sync_to_async(pgsse.close_streams)(channel="room:other")  # a later request...
        await asyncio.sleep(0.3)  # ...applied after the rolled-back one would have been
        await publish("room:x", "e", "still here")
        await reader.wait_for(lambda r: len(r.of_type("e")) == 1)
        assert not reader.ended


async def test_streams_end_at_their_maximum_age_and_resume_with_nothing_lost(
    pg: Postgres, transactional_db: None, stream_app: Callable[[], Any]
) -> None:
    total = 60
    with override_settings(ROOT_URLCONF="tests.urls", PGSSE={"MAX_STREAM_AGE": 1.0}):
        server = LiveServer(stream_app()).start()
        try:
            async with stream_client(server.url) as client:
                reader = ResumingReader(client, "/events/room:age/").start()
                await asyncio.wait_for(reader.live.wait(), 10)
                for n in range(total):
                    await publish("room:age", "e", n)
                    await asyncio.sleep(0.05)
                await reader.wait_for(lambda r: r.count >= total)
                await reader.stop()
            closed = server.on_hub(Hub.stats).streams_closed
        finally:
            server.stop()
    assert reader.payloads() == list(range(total))
    assert reader.connections >= 2
    assert closed.get("max_age", 0) >= 1


async def test_a_periodic_recheck_ends_a_stream_whose_access_was_taken_behind_pgsses_back(
    pg: Postgres, transactional_db: None
) -> None:
    from django.core.asgi import get_asgi_application

    import pgsse.asgi

    ada, ada_session = await member("ada", "room:r")
    _, bob_session = await member("bob", "room:r")
    with override_settings(ROOT_URLCONF="tests.urls", PGSSE={"REAUTHORIZE_INTERVAL": 0.5}):
        server = LiveServer(pgsse.asgi.wrap(get_asgi_application())).start()
        try:
            async with (
                logged_in(server.url, ada_session) as ada_client,
                logged_in(server.url, bob_session) as bob_client,
                open_stream(ada_client, "/member/room:r/") as ada_reader,
                open_stream(bob_client, "/member/room:r/") as bob_reader,
            ):
                await ada_reader.wait_for(live)
                await bob_reader.wait_for(live)
                await revoke(ada, "room:r", close=False)  # an SQL update, say
                # Within the interval (jittered by 10%) and one tick of the hub's clock.
                await ada_reader.wait_for(lambda r: r.ended, timeout=0.55 + 1 + 0.5)
                await asyncio.sleep(1.2)  # bob's stream was re-checked too, and stays
                await publish("room:r", "e", "for bob")
                await bob_reader.wait_for(lambda r: len(r.of_type("e")) == 1)
                assert not bob_reader.ended
            closed = server.on_hub(Hub.stats).streams_closed
        finally:
            server.stop()
    assert closed.get("reauthorization") == 1


async def test_a_route_without_authorization_refuses_every_stream(
    pg: Postgres, transactional_db: None, stream_app: Callable[[], Any]
) -> None:
    _, session = await member("ada")
    with override_settings(ROOT_URLCONF="tests.unauthorized_urls"):
        server = LiveServer(stream_app()).start()
        try:
            async with logged_in(server.url, session) as client:
                refused = await client.get("/feeds/room:a/")
        finally:
            server.stop()
    assert refused.status_code == 403
    assert "no authorization" in refused.text


def test_a_stream_request_over_wsgi_is_answered_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = time.monotonic()
    with override_settings(ROOT_URLCONF="tests.urls"):
        response = Client().get("/events/room:a/")  # Django's test client is WSGI
    assert time.monotonic() - started < 2
    assert response.status_code == 500
    assert "Server-Sent Events streams need an ASGI server" in response.content.decode()
    # This project's application (ASGI_APPLICATION), not a placeholder.
    assert "`uvicorn chatsite.asgi:application`" in response.content.decode()
    assert any("streams need an ASGI server" in r.getMessage() for r in caplog.records)


async def test_a_full_process_answers_503_and_the_open_streams_keep_receiving(
    pg: Postgres, transactional_db: None, stream_app: Callable[[], Any]
) -> None:
    with override_settings(ROOT_URLCONF="tests.urls", PGSSE={"MAX_STREAMS": 2}):
        server = LiveServer(stream_app()).start()
        try:
            async with (
                stream_client(server.url) as client,
                open_stream(client, "/events/room:full/") as one,
                open_stream(client, "/events/room:full/") as two,
            ):
                await one.wait_for(live)
                await two.wait_for(live)
                refused = await client.get("/events/room:full/")
                await publish("room:full", "e", "still flowing")
                for reader in (one, two):
                    await reader.wait_for(lambda r: len(r.of_type("e")) == 1)
            stats = server.on_hub(Hub.stats)
        finally:
            server.stop()
    assert refused.status_code == 503
    assert "its limit" in refused.text
    assert 2 <= int(refused.headers["retry-after"]) <= 6
    assert stats.streams_refused == {"process_full": 1}


async def test_a_fixed_channel_list_is_streamed(stream_server: LiveServer) -> None:
    async with (
        stream_client(stream_server.url) as client,
        open_stream(client, "/news/") as reader,
    ):
        await reader.wait_for(live)
        await publish("news", "e", "headline")
        await publish("alerts", "e", "storm")
        await reader.wait_for(lambda r: len(r.of_type("e")) == 2)
    assert [json.loads(e.data) for e in reader.of_type("e")] == ["headline", "storm"]


async def test_the_projects_own_authentication_middleware_reaches_the_hooks(
    pg: Postgres, transactional_db: None, stream_app: Callable[[], Any]
) -> None:
    from django.conf import settings

    await member("ada")
    await member("bob")
    middleware = [*settings.MIDDLEWARE, "tests.middleware.HeaderUserMiddleware"]
    with override_settings(ROOT_URLCONF="tests.urls", MIDDLEWARE=middleware):
        server = LiveServer(stream_app()).start()
        try:
            async with stream_client(server.url) as client:
                as_bob = await client.get("/named/user:ada/", headers={"X-Test-User": "bob"})
                client.headers["X-Test-User"] = "ada"
                async with open_stream(client, "/named/user:ada/") as reader:
                    await reader.wait_for(live)
                    await publish("user:ada", "e", "only for ada")
                    await reader.wait_for(lambda r: len(r.of_type("e")) == 1)
        finally:
            server.stop()
    assert as_bob.status_code == 403


async def test_an_open_stream_holds_no_database_connection_when_middleware_writes(
    pg: Postgres, transactional_db: None, stream_app: Callable[[], Any]
) -> None:
    import psycopg

    _, session = await member("ada")

    def client_backends() -> int:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            (count,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND backend_type = 'client backend' AND application_name NOT LIKE 'pgsse-%%'"
            ).fetchone() or (0,)
        return int(count)

    streams = 20
    with override_settings(
        ROOT_URLCONF="tests.urls",
        SESSION_SAVE_EVERY_REQUEST=True,  # the session middleware writes after the view
        PGSSE={"MAX_STREAMS_PER_USER": streams},
    ):
        server = LiveServer(stream_app()).start()
        try:
            before = await asyncio.to_thread(client_backends)
            async with logged_in(server.url, session) as client, AsyncExitStack() as stack:
                readers = [
                    await stack.enter_async_context(open_stream(client, f"/private/room:{n}/"))
                    for n in range(streams)
                ]
                for reader in readers:
                    await reader.wait_for(live)
                during = await asyncio.to_thread(client_backends)
                await publish("room:0", "e", "flowing")
                await readers[0].wait_for(lambda r: len(r.of_type("e")) == 1)
        finally:
            server.stop()
    # The test's own connection may come and go; one per stream would be 20 more.
    assert during <= before + 1, (before, during)


async def test_without_pgsse_in_installed_apps_publish_and_streams_say_so(
    pg: Postgres, transactional_db: None, stream_app: Callable[[], Any]
) -> None:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    apps = [app for app in settings.INSTALLED_APPS if app != "pgsse"]
    with override_settings(ROOT_URLCONF="tests.urls", INSTALLED_APPS=apps):
        with pytest.raises(ImproperlyConfigured, match="add 'pgsse' there"):
            await publish("room:a", "e", 1)
        server = LiveServer(stream_app()).start()
        try:
            async with stream_client(server.url) as client:
                response = await client.get("/events/room:a/")
        finally:
            server.stop()
    assert response.status_code == 500
    assert "pgsse is not in INSTALLED_APPS" in response.text
