"""A log read that never answers (a network that drops packets) is given up after
READ_TIMEOUT: catch-up, and with it live delivery on the channel, goes on with a new
connection instead of waiting a quarter of an hour for TCP to give up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import override_settings

from pgsse import publish
from pgsse.hub import Hub
from tests.blackhole import Blackhole

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    proxy = Blackhole().start()
    yield proxy
    proxy.stop()


def published(channel: str, data: object) -> None:
    try:
        publish(channel, "e", data)
    finally:
        connections.close_all()


async def test_catch_up_through_a_silent_network_goes_on_after_the_read_timeout(
    blackhole: Blackhole,
) -> None:
    from django.conf import settings

    pgsse = {**settings.PGSSE, "READ_TIMEOUT": 1.0, "SWEEP_INTERVAL": 0.5, "HEALTH_INTERVAL": 60}
    with override_settings(PGSSE=pgsse):
        async with Hub.from_django(blackhole.conninfo()) as hub:
            subscription = hub.track(("room:partition",))
            await hub.subscribe(subscription)
            await sync_to_async(published)("room:partition", "before")
            async with asyncio.timeout(10):
                while not subscription.pending:
                    await asyncio.sleep(0.02)
            subscription.take()
            assert blackhole.swallow() >= 2  # the listener and the reader: silent now
            # The notification cannot arrive; the sweep's read of the heads hangs on the
            # reader's connection until READ_TIMEOUT, then a new connection reads.
            await sync_to_async(published)("room:partition", "during")
            async with asyncio.timeout(20):  # not TCP's quarter of an hour
                while not subscription.pending:
                    await asyncio.sleep(0.05)
            assert b"during" in b"".join(subscription.take())
            assert blackhole.passing >= 1  # the reader's new connection
            hub.unsubscribe(subscription)
