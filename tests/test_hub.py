"""The hub against a real PostgreSQL, driven directly (no HTTP)."""

from __future__ import annotations

import asyncio

import pytest
from django.test import override_settings

from pgsse.hub import Hub, SubscribeTimeout

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_subscribe_still_waiting_when_streams_end_is_refused() -> None:
    hub = Hub.from_django()
    try:
        waiting = asyncio.create_task(hub.subscribe(("room:late",)))
        await asyncio.sleep(0)  # it now waits for LISTEN on the new channel
        hub.end_streams()
        with pytest.raises(SubscribeTimeout, match="shut down"):
            await waiting
        assert hub.stats().subscriptions == 0
        assert hub.stats().channels == 0
    finally:
        await hub.close()


async def test_subscribing_again_right_after_leaving_does_not_wait_for_the_sweep() -> None:
    with override_settings(PGSSE={"SWEEP_INTERVAL": 600}):
        hub = Hub.from_django()
    try:
        first, _ = await hub.subscribe(("room:again",))
        hub.unsubscribe(first)
        # The listener has not sent UNLISTEN yet, so no LISTEN will announce the new feed.
        again, heads = await asyncio.wait_for(hub.subscribe(("room:again",)), 5)
        assert heads == {"room:again": 0}
        hub.unsubscribe(again)
    finally:
        await hub.close()
