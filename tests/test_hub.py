"""The hub's scheduling, driven against a fake log and a fake listener (no PostgreSQL).

The fakes are small and explicit: the log is a dict of events per channel with a head,
the listener LISTENs when the test says so. What the hub does with them (readiness,
catch-up, holes, the sweep, shared frames, close requests) is checked step by step.
The same hub against a real PostgreSQL is tested in tests/e2e/.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import pytest

from pgsse.channels import pg_channel_name
from pgsse.closing import CONTROL_CHANNEL
from pgsse.conf import PgsseSettings
from pgsse.hub import Hub, SubscribeTimeout
from pgsse.log import ChannelHead, LoggedEvent, wake_payload
from pgsse.position import canonical_channels, format_position
from pgsse.stream import Stream
from pgsse.subscription import EndReason, Subscription


@dataclass
class FakeLog:
    """Events per channel, the channels' heads, and a tally of the reads."""

    events: dict[str, dict[int, tuple[str, str]]] = field(default_factory=dict)
    heads_: dict[str, ChannelHead] = field(default_factory=dict)
    reads: int = 0
    head_reads: int = 0
    failing: bool = False
    batch: int = 500
    #: Channels the hub asked to forget (their history changed).
    forgotten: list[str] = field(default_factory=list)

    def append(self, channel: str, data: object, event_type: str = "e") -> int:
        head = self.heads_.get(channel, ChannelHead(0, 0))
        seq = head.last_seq + 1
        self.events.setdefault(channel, {})[seq] = (event_type, json.dumps(data))
        self.heads_[channel] = ChannelHead(seq, head.pruned_seq)
        return seq

    def delete(self, channel: str, seqs: Sequence[int]) -> None:
        """Rows removed by hand: the head does not say so."""
        for seq in seqs:
            del self.events[channel][seq]

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    #: Channels whose reads wait until their event is set (a slow read, injected).
    held: dict[str, asyncio.Event] = field(default_factory=dict)

    async def events_after(self, channel: str, after: int, upto: int) -> list[LoggedEvent]:
        self.reads += 1
        if channel in self.held:
            await self.held[channel].wait()
        if self.failing:
            raise ConnectionError("the log is unreachable")
        rows = sorted(seq for seq in self.events.get(channel, {}) if after < seq <= upto)
        return [LoggedEvent(channel, seq, *self.events[channel][seq]) for seq in rows[: self.batch]]

    async def heads(self, channels: Sequence[str]) -> dict[str, ChannelHead]:
        self.head_reads += 1
        if self.failing:
            raise ConnectionError("the log is unreachable")
        return {name: self.heads_.get(name, ChannelHead(0, 0)) for name in channels}

    def expire(self) -> None:
        pass

    def forget(self, channel: str) -> None:
        self.forgotten.append(channel)


class FakeListener:
    """LISTENs only when the test calls :meth:`listen`; delivers what the test notifies."""

    def __init__(
        self,
        on_notify: Callable[[str, str], None],
        on_listening: Callable[[set[str]], None],
        on_lost: Callable[[], None],
    ) -> None:
        self._on_notify = on_notify
        self._on_listening = on_listening
        self._on_lost = on_lost
        self.wanted: set[str] = set()
        self.listening: frozenset[str] = frozenset()
        self.backend_pid: int | None = None
        self.connections_made = 0

    def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def want_more(self, pg_channel: str) -> None:
        self.wanted.add(pg_channel)

    def want_less(self, pg_channel: str) -> None:
        self.wanted.discard(pg_channel)

    def listen(self) -> None:
        """Connect if needed and LISTEN to everything wanted, as the real listener does."""
        if self.backend_pid is None:
            self.backend_pid = 4242
            self.connections_made += 1
        added = self.wanted - self.listening
        self.listening = frozenset(self.wanted)
        if added:
            self._on_listening(set(added))

    def lose(self) -> None:
        self.backend_pid = None
        self.listening = frozenset()
        self._on_lost()

    def notify(self, channel: str, payload: str) -> None:
        self._on_notify(pg_channel_name(channel), payload)


SETTINGS = PgsseSettings(
    HANDLE_SIGNALS=False,
    PRUNE_INTERVAL=None,
    SWEEP_INTERVAL=0.05,
    SUBSCRIBE_TIMEOUT=0.5,
    HEARTBEAT_INTERVAL=60.0,
    MAX_BUFFERED_BYTES=4096,
)


@dataclass
class Rig:
    hub: Hub
    log: FakeLog
    listener: FakeListener

    def inline(self, channel: str, seq: int) -> str:
        """The payload publish() sends for ``channel``'s event ``seq``, inline."""
        event_type, data = self.log.events[channel][seq]
        return f"{seq}\t{channel}\t{event_type}\t{data}"

    async def subscribe_ready(
        self, channels: tuple[str, ...], client: str = ""
    ) -> tuple[Subscription, dict[str, int]]:
        waiting = asyncio.ensure_future(join(self.hub, channels, client))
        await settle()
        self.listener.listen()
        return await asyncio.wait_for(waiting, 2)


async def join(
    hub: Hub,
    channels: tuple[str, ...],
    client: str = "",
    close_position: int | None = None,
    **options: object,
) -> tuple[Subscription, dict[str, int]]:
    """A stream's subscription, as a stream takes it: tracked, then joined."""
    subscription = hub.track(channels, client)
    live_from = await hub.subscribe(subscription, close_position, **options)  # type: ignore[arg-type]
    return subscription, live_from


async def settle(rounds: int = 5) -> None:
    """Let callbacks and spawned tasks run (no time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


@pytest.fixture
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    """A started hub on a fake log; ``@pytest.mark.settings(KEY=value)`` changes its settings."""
    marker = request.node.get_closest_marker("settings")
    settings = dataclasses.replace(SETTINGS, **marker.kwargs) if marker else SETTINGS
    log = FakeLog()
    made: list[FakeListener] = []

    def make_listener(*callbacks: Callable[..., None]) -> FakeListener:
        made.append(FakeListener(*callbacks))
        return made[0]

    async with Hub(settings, reader=log, make_listener=make_listener) as hub:
        await settle()
        yield Rig(hub, log, made[0])


def payloads(subscription: Subscription) -> list[object]:
    """The data of every frame queued for ``subscription``."""
    found = []
    for frame in subscription.take():
        for line in frame.decode().splitlines():
            if line.startswith("data: "):
                found.append(json.loads(line[6:]))
    return found


async def test_a_feed_is_ready_only_once_its_listen_is_in_place(rig: Rig) -> None:
    rig.log.append("room:a", 1)
    waiting = asyncio.ensure_future(join(rig.hub, ("room:a",)))
    await asyncio.sleep(0.2)  # four sweeps: each reads heads, none may make the feed ready
    assert not waiting.done()
    rig.listener.listen()
    subscription, live_from = await asyncio.wait_for(waiting, 1)
    assert live_from == {"room:a": 1}
    rig.hub.unsubscribe(subscription)


async def test_while_the_listener_is_away_new_streams_wait_then_get_refused(rig: Rig) -> None:
    first, _ = await rig.subscribe_ready(("room:a",))
    rig.listener.lose()
    with pytest.raises(SubscribeTimeout):
        await join(rig.hub, ("room:a",))
    # Back: the next stream gets in, and the open one never ended.
    waiting = asyncio.ensure_future(join(rig.hub, ("room:a",)))
    await settle()
    rig.listener.listen()
    second, _ = await asyncio.wait_for(waiting, 1)
    assert first.end_reason is None
    for subscription in (first, second):
        rig.hub.unsubscribe(subscription)


async def test_events_are_delivered_inline_or_read_once_when_sent_by_reference(rig: Rig) -> None:
    subscription, _ = await rig.subscribe_ready(("room:a",))
    seq = rig.log.append("room:a", "inline")
    rig.listener.notify("room:a", rig.inline("room:a", seq))
    assert payloads(subscription) == ["inline"]
    reads = rig.log.reads
    seq = rig.log.append("room:a", "by reference")
    rig.listener.notify("room:a", f"{seq}\troom:a")
    await until(lambda: bool(subscription.pending))
    assert payloads(subscription) == ["by reference"]
    assert rig.log.reads == reads + 1
    rig.hub.unsubscribe(subscription)


@pytest.mark.settings(SWEEP_INTERVAL=60.0)
async def test_a_wake_up_makes_the_hub_read_the_head_and_the_events_once(rig: Rig) -> None:
    """``NOTIFY = "in_transaction"`` announces staged events without their seqs: one head
    read for a burst of wake-ups, then the events, in order."""
    subscription, _ = await rig.subscribe_ready(("room:a",))
    heads, reads = rig.log.head_reads, rig.log.reads
    for n in range(3):
        rig.log.append("room:a", n)
        rig.listener.notify("room:a", wake_payload("room:a"))
    await until(lambda: len(subscription.pending) == 3)
    assert payloads(subscription) == [0, 1, 2]
    assert rig.log.head_reads == heads + 1
    assert rig.log.reads == reads + 1
    rig.hub.unsubscribe(subscription)


async def test_a_forget_notice_drops_what_the_reader_kept_of_its_channel(rig: Rig) -> None:
    from pgsse.closing import CONTROL_CHANNEL

    subscription, _ = await rig.subscribe_ready(("room:a",))
    seq = rig.log.append(CONTROL_CHANNEL, {"channel": "room:a"}, event_type="forget")
    rig.listener.notify(CONTROL_CHANNEL, rig.inline(CONTROL_CHANNEL, seq))
    await until(lambda: rig.log.forgotten == ["room:a"])
    assert rig.hub.close_position() == seq
    assert subscription.end_reason is None  # forgetting closes nothing by itself
    rig.hub.unsubscribe(subscription)


async def test_a_lost_notification_is_delivered_by_the_sweep(rig: Rig) -> None:
    subscription, _ = await rig.subscribe_ready(("room:a",))
    rig.log.append("room:a", "never notified")
    await until(lambda: bool(subscription.pending))
    assert payloads(subscription) == ["never notified"]
    rig.hub.unsubscribe(subscription)


async def test_a_hole_is_lost_once_counted_and_read_a_bounded_number_of_times(rig: Rig) -> None:
    for n in range(3):
        rig.log.append("room:a", n)
    subscription, live_from = await rig.subscribe_ready(("room:a",))
    lossy, _ = await rig.subscribe_ready(("typing:a",))
    assert live_from == {"room:a": 3}
    for n in range(3, 10):
        rig.log.append("room:a", n)
    rig.log.delete("room:a", [4, 5, 6, 7])  # by hand: pruned_seq does not explain it
    reads = rig.log.reads
    rig.listener.notify("room:a", "10\troom:a")
    await until(lambda: subscription.end_reason is not None)
    await asyncio.sleep(0.2)  # a few sweeps: nothing more to read
    assert subscription.end_reason == EndReason.EVENTS_LOST
    assert rig.hub.stats().holes == 4
    # Read, head, read again (still missing), then past the hole: no spinning.
    assert rig.log.reads - reads <= 4
    assert lossy.end_reason is None
    for each in (subscription, lossy):
        rig.hub.unsubscribe(each)


async def test_everything_after_a_feed_gone_is_skipped_once(rig: Rig) -> None:
    subscription, _ = await rig.subscribe_ready(("room:t",))
    for n in range(5):
        rig.log.append("room:t", n)
    rig.log.delete("room:t", [1, 2, 3, 4, 5])  # a TRUNCATE: no row after the feed's seq
    reads = rig.log.reads
    rig.listener.notify("room:t", "5\troom:t")
    await until(lambda: subscription.end_reason is not None)
    await asyncio.sleep(0.2)
    assert rig.hub.stats().holes == 5
    assert rig.log.reads - reads <= 3
    rig.hub.unsubscribe(subscription)


async def test_failing_catch_ups_back_off_and_are_counted(rig: Rig) -> None:
    subscription, _ = await rig.subscribe_ready(("room:f",))
    rig.log.append("room:f", "late")
    rig.log.failing = True
    rig.listener.notify("room:f", "1\troom:f")
    await asyncio.sleep(0.5)
    # Without backoff this loop would read thousands of times in half a second.
    assert rig.log.reads < 12
    assert rig.hub.stats().failures >= 2
    rig.log.failing = False
    await until(lambda: bool(subscription.pending), timeout=3)
    assert payloads(subscription) == ["late"]
    rig.hub.unsubscribe(subscription)


async def test_streams_of_one_channel_set_share_each_frame(rig: Rig) -> None:
    alone = [await rig.subscribe_ready(("room:a",)) for _ in range(2)]
    both = [await rig.subscribe_ready(("room:a", "user:1")) for _ in range(2)]
    seq = rig.log.append("room:a", "hi")
    rig.listener.notify("room:a", rig.inline("room:a", seq))
    (first,), (second,) = (s.pending for s, _ in alone)
    assert first is second
    assert first.split(b"\n")[0].endswith(b":1")
    (first,), (second,) = (s.pending for s, _ in both)
    assert first is second
    assert first.split(b"\n")[0].endswith(b":1.0")  # the whole position: room:a 1, user:1 0
    for subscription, _ in (*alone, *both):
        rig.hub.unsubscribe(subscription)


async def test_a_stream_that_falls_too_far_behind_is_ended(rig: Rig) -> None:
    subscription, _ = await rig.subscribe_ready(("room:s",))
    blob = "x" * 1000
    for _ in range(5):  # 5 KB of frames against a 4 KiB bound
        seq = rig.log.append("room:s", blob)
        rig.listener.notify("room:s", rig.inline("room:s", seq))
    assert subscription.end_reason == EndReason.SLOW_CONSUMER
    assert subscription.pending == []
    rig.hub.unsubscribe(subscription)
    assert rig.hub.stats().streams_closed == {EndReason.SLOW_CONSUMER: 1}


async def test_close_requests_end_the_matching_streams_only(rig: Rig) -> None:
    ada_room, _ = await rig.subscribe_ready(("room:a",), client="user:1")
    ada_other, _ = await rig.subscribe_ready(("room:b",), client="user:1")
    bob_room, _ = await rig.subscribe_ready(("room:a",), client="user:2")
    seq = rig.log.append(CONTROL_CHANNEL, {"client": "user:1", "channel": "room:a"}, "close")
    rig.listener.notify(CONTROL_CHANNEL, rig.inline(CONTROL_CHANNEL, seq))
    assert ada_room.end_reason == EndReason.CLOSED_ON_PURPOSE
    assert (ada_other.end_reason, bob_room.end_reason) == (None, None)
    seq = rig.log.append(CONTROL_CHANNEL, {"client": None, "channel": "room:a"}, "close")
    rig.listener.notify(CONTROL_CHANNEL, rig.inline(CONTROL_CHANNEL, seq))
    assert bob_room.end_reason == EndReason.CLOSED_ON_PURPOSE
    assert ada_other.end_reason is None
    for subscription in (ada_room, ada_other, bob_room):
        rig.hub.unsubscribe(subscription)


async def test_a_close_request_before_the_stream_joined_still_ends_it(rig: Rig) -> None:
    assert rig.hub.close_position() is None  # not known yet: the view reads the log's head
    position = rig.log.heads_.get(CONTROL_CHANNEL, ChannelHead(0, 0)).last_seq
    # the stream's hooks run from here...
    seq = rig.log.append(CONTROL_CHANNEL, {"client": "user:1", "channel": None}, "close")
    rig.listener.notify(CONTROL_CHANNEL, rig.inline(CONTROL_CHANNEL, seq))
    waiting = asyncio.ensure_future(join(rig.hub, ("room:a",), "user:1", position))
    await settle()
    rig.listener.listen()
    late, _ = await asyncio.wait_for(waiting, 1)  # ...and it joins after the request
    assert late.end_reason == EndReason.CLOSED_ON_PURPOSE
    fresh, _ = await rig.subscribe_ready(("room:a",), client="user:1")
    assert fresh.end_reason is None  # authorized after the request: not concerned
    for subscription in (late, fresh):
        rig.hub.unsubscribe(subscription)


async def test_a_client_ahead_of_this_hub_waits_until_it_catches_up(rig: Rig) -> None:
    first, _ = await rig.subscribe_ready(("room:a",))
    seq = rig.log.append("room:a", "seen elsewhere")  # committed, not yet notified here
    waiting = asyncio.ensure_future(join(rig.hub, ("room:a",), at_least={"room:a": seq}))
    subscription, live_from = await asyncio.wait_for(waiting, 1)  # the hub read the log
    assert live_from == {"room:a": seq}
    assert payloads(first) == ["seen elsewhere"]
    for each in (first, subscription):
        rig.hub.unsubscribe(each)


@pytest.mark.parametrize(
    "frozen",
    [
        pytest.param(True, marks=pytest.mark.settings(GC_FREEZE=True), id="GC_FREEZE"),
        pytest.param(False, marks=pytest.mark.settings(GC_FREEZE=False), id="without"),
    ],
)
async def test_each_500_streams_opened_are_frozen_at_once_not_on_the_clock(
    rig: Rig, frozen: bool
) -> None:
    """A worker taking back thousands of clients opens them faster than its clock ticks."""
    before = gc.get_freeze_count()
    first, _ = await rig.subscribe_ready(("room:f",))
    opened = [first]
    try:
        for _ in range(498):
            opened.append((await asyncio.wait_for(join(rig.hub, ("room:f",)), 2))[0])
        assert gc.get_freeze_count() == before  # 499 streams: not yet
        opened.append((await asyncio.wait_for(join(rig.hub, ("room:f",)), 2))[0])
        # The 500th froze what the streams allocated, with no clock tick in between.
        assert (gc.get_freeze_count() > before) is frozen
    finally:
        for subscription in opened:
            rig.hub.unsubscribe(subscription)
        gc.unfreeze()  # what this test froze goes back to the collector


def close_request(rig: Rig, client: str) -> int:
    """A close request committed to the fake log (not notified)."""
    return rig.log.append(CONTROL_CHANNEL, {"client": client, "channel": None}, "close")


async def test_a_removal_missed_during_an_outage_is_applied_before_the_messages_after_it(
    rig: Rig,
) -> None:
    """A member is removed (a close request) and messages posted while the listener is
    away; on its return the close request's read is slow. The messages must not reach the
    removed member: catch-ups apply pgsse:control first, in log order."""
    ada, _ = await rig.subscribe_ready(("room:a",), client="user:1")
    bob, _ = await rig.subscribe_ready(("room:a",), client="user:2")
    rig.listener.lose()
    close_request(rig, "user:1")
    for n in range(3):
        rig.log.append("room:a", n)
    rig.log.held[CONTROL_CHANNEL] = asyncio.Event()  # the control channel reads slowly
    rig.listener.listen()
    await until(lambda: rig.hub.stats().catch_ups >= 2)
    await settle(20)
    assert payloads(ada) == []  # nothing before the request is applied
    assert payloads(bob) == []
    rig.log.held.pop(CONTROL_CHANNEL).set()
    await until(lambda: len(bob.pending) == 3)
    assert ada.end_reason == EndReason.CLOSED_ON_PURPOSE
    assert payloads(ada) == []
    assert payloads(bob) == [0, 1, 2]
    for subscription in (ada, bob):
        rig.hub.unsubscribe(subscription)


async def test_after_an_outage_no_live_event_passes_a_close_request_not_yet_applied(
    rig: Rig,
) -> None:
    ada, _ = await rig.subscribe_ready(("room:a",), client="user:1")
    rig.listener.lose()
    close_request(rig, "user:1")  # while the listener was away: never notified
    rig.log.held[CONTROL_CHANNEL] = asyncio.Event()
    rig.listener.listen()
    seq = rig.log.append("room:a", "posted after the removal")
    rig.listener.notify("room:a", rig.inline("room:a", seq))  # arrives before the refresh
    await settle(20)
    assert payloads(ada) == []
    rig.log.held.pop(CONTROL_CHANNEL).set()
    await until(lambda: ada.end_reason is not None)
    await settle(20)
    assert ada.end_reason == EndReason.CLOSED_ON_PURPOSE
    assert payloads(ada) == []
    rig.hub.unsubscribe(ada)


async def test_after_a_restart_old_close_requests_end_no_stream_authorized_since(
    rig: Rig,
) -> None:
    """A starting hub does not know where pgsse:control stands: the view reads it from the
    log, and the requests the hub remembers from before do not end the stream."""
    for _ in range(3):
        close_request(rig, "user:1")  # long before this process started
    assert rig.hub.close_position() is None
    position = rig.log.heads_[CONTROL_CHANNEL].last_seq  # what the view reads then
    waiting = asyncio.ensure_future(join(rig.hub, ("room:a",), "user:1", position))
    await settle()
    rig.listener.listen()
    stream, _ = await asyncio.wait_for(waiting, 1)
    assert stream.end_reason is None
    assert rig.hub.close_position() == 3
    rig.hub.unsubscribe(stream)


@pytest.mark.settings(SUBSCRIBE_TIMEOUT=60.0)
async def test_shutdown_ends_the_streams_waiting_to_join_at_once(rig: Rig) -> None:
    subscription = rig.hub.track(("room:a",))
    waiting = asyncio.ensure_future(rig.hub.subscribe(subscription))  # never LISTENed
    await settle()
    assert not waiting.done()
    rig.hub.end_streams()
    with pytest.raises(SubscribeTimeout):
        await asyncio.wait_for(waiting, 2)  # not SUBSCRIBE_TIMEOUT's 60 s
    assert subscription.end_reason == EndReason.SHUTDOWN
    rig.hub.unsubscribe(subscription)
    assert rig.hub.stats().subscriptions == 0


async def test_one_event_larger_than_the_buffer_does_not_end_an_idle_stream(rig: Rig) -> None:
    subscription, _ = await rig.subscribe_ready(("room:big",))
    big = "x" * 6000  # MAX_BUFFERED_BYTES is 4096 here
    seq = rig.log.append("room:big", big)
    rig.listener.notify("room:big", rig.inline("room:big", seq))
    assert subscription.end_reason is None
    assert payloads(subscription) == [big]
    # Falling behind is still bounded: a second one queued behind the first ends it.
    for _ in range(2):
        seq = rig.log.append("room:big", big)
        rig.listener.notify("room:big", rig.inline("room:big", seq))
    assert subscription.end_reason == EndReason.SLOW_CONSUMER
    rig.hub.unsubscribe(subscription)


async def test_every_frame_is_a_write_the_clock_sees_from_the_first_to_the_last(
    rig: Rig,
) -> None:
    for n in range(3):
        rig.log.append("room:w", n)
    other = format_position(canonical_channels(["room:else"]), {"room:else": 1})
    stream = Stream(rig.hub, ("room:w",), resume_from=other)  # a reset, then live
    chunks = stream.chunks()
    seen: list[bytes] = []

    async def next_chunk() -> bytes:
        chunk = await anext(chunks)
        subscription = stream.subscription
        assert subscription is not None
        # While the server writes it, the clock sees a write in progress, of this size.
        assert subscription.writing_since > 0
        assert subscription.in_flight == len(chunk)
        seen.append(chunk)
        return chunk

    first = asyncio.ensure_future(next_chunk())
    assert (await first).startswith(b": pgsse")  # the preamble, before subscribing
    joining = asyncio.ensure_future(next_chunk())
    await settle()
    rig.listener.listen()
    assert b"event: reset" in await asyncio.wait_for(joining, 2)
    rig.hub.end_streams()  # the server is going away
    assert (await next_chunk()).startswith(b"retry:")
    assert await anext(chunks, None) is None
    assert len(seen) == 3
    assert rig.hub.stats().subscriptions == 0
