from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.test import override_settings

from tests import postgres
from tests.servers import LiveServer, ServerProcess, uvicorn_command


@pytest.fixture(scope="session")
def pg(django_db_setup: None, django_db_blocker: object) -> Iterator[postgres.Postgres]:
    """The test PostgreSQL, with the URL of the test database pytest-django created."""
    db = settings.DATABASES["default"]
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host", "")
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    if host.startswith("/"):
        url = f"postgresql://{auth}@{port}/{db['NAME']}?host={host}"
    else:
        url = f"postgresql://{auth}@{host}{port}/{db['NAME']}"
    yield postgres.handle(url)
    # Threads of async tests keep their Django connections; end them so that the test
    # database can be dropped.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(params=["wrapped", "plain"])
def stream_app(request: pytest.FixtureRequest) -> Callable[[], Any]:
    """Builds the application under test, for each way pgsse serves streams: wrapped by
    ``pgsse.asgi.wrap()`` (the request phase in a pool, no thread per stream), and Django's
    ASGI handler alone (a thread per stream)."""

    def build() -> Any:
        from django.core.asgi import get_asgi_application

        import pgsse.asgi

        app = get_asgi_application()
        return pgsse.asgi.wrap(app) if request.param == "wrapped" else app

    return build


@pytest.fixture
def stream_server(
    transactional_db: None, pg: postgres.Postgres, stream_app: Callable[[], Any]
) -> Iterator[LiveServer]:
    """pgsse alone (tests/urls.py) served by a real uvicorn on 127.0.0.1."""
    with override_settings(ROOT_URLCONF="tests.urls"):
        live = LiveServer(stream_app()).start()
        yield live
        live.stop()


@pytest.fixture
def server(transactional_db: None, pg: postgres.Postgres) -> Iterator[LiveServer]:
    """The chat served by a real uvicorn on 127.0.0.1, on the test database."""
    from chat.models import Room
    from chatsite.asgi import application

    # Transactional tests empty every table afterwards: bring back the default rooms.
    for slug in ("lobby", "random"):
        Room.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
    live = LiveServer(application).start()
    yield live
    live.stop()


@pytest.fixture
def two_processes(transactional_db: None, pg: postgres.Postgres) -> Iterator[list[ServerProcess]]:
    """Two uvicorn processes serving the chat on the test database."""
    from chat.models import Room

    Room.objects.get_or_create(slug="lobby", defaults={"name": "Lobby"})
    servers = [ServerProcess(uvicorn_command(), pg.url) for _ in range(2)]
    try:
        yield [server.start() for server in servers]
    finally:
        for server in servers:
            server.kill()
            server.log.close()


@pytest.fixture(scope="session", autouse=True)
def _notifier_stopped_before_the_database_goes() -> Iterator[None]:
    """The notifier's connection ends before pytest-django drops the test database."""
    yield
    from pgsse.notifier import stop_notifier

    stop_notifier()


@pytest.fixture(scope="session", autouse=True)
def _attachments_removed_at_the_end() -> Iterator[None]:
    """The run's attachments (tests/settings.py's DJANGO_MEDIA_ROOT) go with it."""
    yield
    shutil.rmtree(os.environ["DJANGO_MEDIA_ROOT"], ignore_errors=True)
