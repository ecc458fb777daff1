"""Several server processes share one PostgreSQL: a publish on one reaches the others."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from tests.chat_accounts import ChatAccount
from tests.clients import open_stream
from tests.servers import ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)


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
