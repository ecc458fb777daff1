"""What streams deliver of a log that forgot: replay across redacted events, shared reads
of a reconnect storm, and a purged channel's open streams."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from pgsse import publish, purge_channel, redact
from pgsse.closing import CONTROL_CHANNEL
from pgsse.log import read_heads_sync
from pgsse.position import fingerprint
from tests.clients import LightReader
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def frames(reader: LightReader) -> list[tuple[str, str, str]]:
    """Every (kind, id, data) the reader received, kind "" for an id-only frame."""
    return [entry for _, entries in reader.segments for entry in entries]


async def replay_from(server: LiveServer, channel: str, last_event_id: str) -> LightReader:
    reader = LightReader(server.url, f"/events/{channel}/")
    reader.last_id = last_event_id
    reader.start()
    await asyncio.wait_for(reader.live.wait(), 30)
    return reader


async def control_applied(server: LiveServer) -> None:
    """Until the server's hub has applied every close request and forget notice."""
    head = await sync_to_async(read_heads_sync)([CONTROL_CHANNEL], "default")
    target = head[CONTROL_CHANNEL].last_seq
    for _ in range(600):
        if (server.on_hub(lambda hub: hub.close_position()) or -1) >= target:
            return
        await asyncio.sleep(0.05)  # the hub's own state: nothing to await from here
    raise AssertionError("the hub never caught up with pgsse:control")


async def test_replay_across_redacted_events_sends_their_ids_and_nothing_else(
    stream_server: LiveServer,
) -> None:
    channel = "forget:replay"
    prefix = fingerprint((channel,))
    for text, key in (("secret one", "m:1"), ("kept", "m:2"), ("secret two", "m:1")):
        await sync_to_async(publish)(channel, "e", {"text": text}, key=key)
    assert await sync_to_async(redact)(channel, key="m:1") == 2
    reader = await replay_from(stream_server, channel, f"{prefix}:0")
    try:
        await reader.wait_for(lambda r: len(frames(r)) >= 4)
        assert frames(reader) == [
            ("", f"{prefix}:1", ""),
            ("e", f"{prefix}:2", '{"text":"kept"}'),
            ("", f"{prefix}:3", ""),
            ("", f"{prefix}:3", ""),  # live from here
        ]
        assert reader.payloads() == [{"text": "kept"}]
    finally:
        await reader.stop()


async def test_a_redaction_is_not_served_from_a_read_kept_for_a_reconnect_storm(
    stream_server: LiveServer,
) -> None:
    """Reads are shared for a few seconds; the forget notice drops the channel's."""
    channel = "forget:shared"
    prefix = fingerprint((channel,))
    await sync_to_async(publish)(channel, "e", {"text": "soon erased"}, key="m:1")
    await sync_to_async(publish)(channel, "e", {"text": "kept"}, key="m:2")
    first = await replay_from(stream_server, channel, f"{prefix}:0")
    try:
        await first.wait_for(lambda r: r.count == 2)
        await sync_to_async(redact)(channel, key="m:1")
        await control_applied(stream_server)
        second = await replay_from(stream_server, channel, f"{prefix}:0")
        try:
            await second.wait_for(lambda r: len(frames(r)) >= 3)
            assert second.payloads() == [{"text": "kept"}]
            assert frames(second)[0] == ("", f"{prefix}:1", "")
        finally:
            await second.stop()
    finally:
        await first.stop()


async def test_a_purge_ends_open_streams_and_their_return_finds_nothing(
    stream_server: LiveServer,
) -> None:
    channel = "forget:purged"
    prefix = fingerprint((channel,))
    await sync_to_async(publish)(channel, "e", {"text": "gone soon"})
    reader = await replay_from(stream_server, channel, f"{prefix}:0")
    try:
        await reader.wait_for(lambda r: r.count == 1)
        await sync_to_async(purge_channel)(channel)
        await reader.wait_for(lambda r: r.connections >= 2 and r.segments[-1][1])
        assert reader.clean_ends >= 1  # ended with retry:, then back
        # Back live at the tombstone's position, with nothing replayed.
        assert reader.segments[-1][1] == [("", f"{prefix}:1", "")]
    finally:
        await reader.stop()
    old = await replay_from(stream_server, channel, f"{prefix}:0")
    try:
        await old.wait_for(lambda r: len(frames(r)) >= 1)
        kind, event_id, data = frames(old)[0]
        assert (kind, event_id) == ("reset", f"{prefix}:1")
        assert '"expired"' in data
        assert old.payloads() == []
    finally:
        await old.stop()
