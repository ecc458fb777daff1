"""Several server processes share one PostgreSQL: a publish on one reaches the others."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async

from chat.models import Room
from tests.chat_accounts import ChatAccount
from tests.clients import open_stream
from tests.postgres import Postgres
from tests.servers import ServerProcess, uvicorn_command

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_processes(transactional_db: None, pg: Postgres) -> Iterator[list[ServerProcess]]:
    Room.objects.get_or_create(slug="lobby", defaults={"name": "Lobby"})
    servers = [ServerProcess(uvicorn_command(), pg.url) for _ in range(2)]
    try:
        yield [server.start() for server in servers]
    finally:
        for server in servers:
            server.kill()


async def test_post_on_one_process_reaches_streams_on_the_other(
    two_processes: list[ServerProcess],
) -> None:
    first, second = two_processes
    alice = await sync_to_async(ChatAccount)(first.url, "alice")
    # The session made on the first process is valid on the second: same database.
    reading = alice.stream_client()
    reading.base_url = second.url
    async with reading as client, open_stream(client, "/rooms/lobby/events/") as reader:
        await reader.wait_for(lambda r: bool(r.last_id))
        sent = await sync_to_async(alice.say)("lobby", "across processes")
        await reader.wait_for(lambda r: bool(r.messages()))
        assert reader.messages() == [sent]
    alice.close()
