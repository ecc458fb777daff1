"""pgsse.js in Chromium, against real streams behind a gate that refuses on demand.

The page (tests/urls.py) includes pgsse.js with ``{% pgsse_script %}`` and renders the
page-load position with ``{% pgsse_position %}``; the stream route is a ``StreamView``
behind a gate (tests/gate.py) that answers 503, 403... when told to, counts every request
and can end open streams. What the page records (states, events, resets) is compared
with what the test published and what the gate saw.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import override_settings
from playwright.async_api import BrowserContext, Page

import pgsse
from pgsse.hub import Hub
from tests.gate import GATES, Gate
from tests.postgres import Postgres
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]

# Short delays keep the tests quick; the server's Retry-After is honoured on top of them.
MIN_DELAY_MS = 100
MAX_DELAY_MS = 400

START = """
({minDelay, maxDelay}) => {
  const element = document.getElementById("stream");
  window.log = {states: [], events: [], resets: []};
  window.stream = pgsse.connect(element.dataset.url, {
    position: element.dataset.position,
    minDelay,
    maxDelay,
    events: {
      item: (data, event) => window.log.events.push([data, event.lastEventId]),
    },
    onstate: (state, info) => window.log.states.push([state, info]),
    onreset: (info) => window.log.resets.push(info),
  });
}
"""


@pytest.fixture
def stream_server(transactional_db: None, pg: Postgres) -> Iterator[LiveServer]:
    """tests/urls.py under Django's ASGI handler: the gate rewrites the stream's response
    body, which only that path sends (pgsse.js sees the same answers on either path).
    Static files (pgsse.js) are served in front of it, as the chat serves them."""
    from django.core.asgi import get_asgi_application

    from chatsite.static_files import with_static_files

    with override_settings(ROOT_URLCONF="tests.urls"):
        live = LiveServer(with_static_files(get_asgi_application())).start()
        yield live
        live.stop()


@pytest.fixture
def gate() -> Iterator[Gate]:
    """A new gate on the stream route, admitting everything until told otherwise."""
    new = Gate(uuid.uuid4().hex[:12])
    GATES[new.name] = new
    yield new
    del GATES[new.name]


@pytest.fixture
def channel() -> str:
    return f"room:{uuid.uuid4().hex[:12]}"


def subscriptions(hub: Hub) -> int:
    return hub.stats().subscriptions


async def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def current_position(channel: str) -> str:
    try:
        return pgsse.current_position([channel])
    finally:
        connections.close_all()


def _publish(channel: str, items: range) -> None:
    try:
        for n in items:
            pgsse.publish(channel, "item", n)
    finally:
        connections.close_all()  # the test database is dropped at the end of the session


publish = sync_to_async(_publish)


async def open_page(
    new_context: NewContext,
    server: LiveServer,
    stream: str,
    position: list[str],
    fake_clock: bool = False,
) -> Page:
    """The test page over ``stream``, starting from the page-load position of ``position``;
    ``fake_clock``: its timers run on a clock the test holds (``page.clock``)."""
    page = await (await new_context()).new_page()
    if fake_clock:
        await page.clock.install()
    query = urlencode({"stream": stream, "position": position}, doseq=True)
    await page.goto(f"{server.url}/pgsse-js/?{query}")
    await page.evaluate(START, {"minDelay": MIN_DELAY_MS, "maxDelay": MAX_DELAY_MS})
    return page


async def wait_for(page: Page, condition: str) -> None:
    # As a function: Playwright evaluates a bare expression with eval(), which a page's
    # Content-Security-Policy forbids.
    await page.wait_for_function(f"() => {condition}", timeout=20_000)


async def until_true(page: Page, condition: str) -> None:
    """Like :func:`wait_for`, polled from here: Playwright's own waiting runs on the page's
    timers, which a paused clock stops."""
    deadline = asyncio.get_running_loop().time() + 20
    while not await page.evaluate(f"() => Boolean({condition})"):
        assert asyncio.get_running_loop().time() < deadline, f"not met in time: {condition}"
        await asyncio.sleep(0.05)


async def log(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("window.log")
    return result


async def wait_for_items(page: Page, count: int) -> list[int]:
    await wait_for(page, f"window.log.events.length >= {count}")
    return [data for data, _ in (await log(page))["events"]]


def refused(status: int) -> str:
    """The page's condition: a reconnect is waiting after a probe that saw ``status``."""
    return (
        f"window.log.states.some(([s, info]) => s === 'reconnecting' && info.status === {status})"
    )


async def test_refused_with_503_from_the_first_attempt_it_gets_in_later_and_misses_nothing(
    stream_server: LiveServer, new_context: NewContext, gate: Gate, channel: str
) -> None:
    await publish(channel, range(0, 3))  # before the page: shown with it, never streamed
    gate.refuse(503, retry_after=1)
    page = await open_page(new_context, stream_server, gate.url(channel), [channel])
    await wait_for(page, refused(503))
    await publish(channel, range(3, 6))  # while refused
    gate.admit()
    assert await wait_for_items(page, 3) == [3, 4, 5]
    await wait_for(page, "window.stream.state === 'live'")
    await publish(channel, range(6, 8))

    assert await wait_for_items(page, 5) == [3, 4, 5, 6, 7]
    states = (await log(page))["states"]
    waits = [info for state, info in states if state == "reconnecting"]
    assert states[0] == ["connecting", {}]
    assert states[-1] == ["live", {}]
    # Each wait after a 503 honoured its Retry-After of 1 s, plus the backoff. (A probe
    # that came after the gate opened saw 200 and waited the backoff alone.)
    assert waits[0]["status"] == 503
    for info in waits:
        retry_after = 1000 if info["status"] == 503 else 0
        assert info["retryAfter"] == retry_after
        assert retry_after + MIN_DELAY_MS / 2 <= info["delay"] <= retry_after + MAX_DELAY_MS
    # One probe per refused EventSource, no more; all from the page-load position.
    seen = gate.seen
    assert [s.status for s in seen[:2]] == [503, 503]
    assert seen[-1].status == 200
    assert len(seen) <= 2 * len(waits) + 1
    position = await page.evaluate("document.getElementById('stream').dataset.position")
    assert {(s.last_event_id_header, s.last_event_id_query) for s in seen} == {(None, position)}


async def test_refused_after_a_live_stream_ended_it_resumes_from_the_last_event_it_saw(
    stream_server: LiveServer, new_context: NewContext, gate: Gate, channel: str
) -> None:
    page = await open_page(new_context, stream_server, gate.url(channel), [channel])
    await wait_for(page, "window.stream.state === 'live'")
    await publish(channel, range(0, 2))
    assert await wait_for_items(page, 2) == [0, 1]
    # The server ends the stream after the next event, then refuses: the browser's own
    # reconnect fails, so pgsse.js takes over.
    gate.refuse(503, retry_after=1)
    gate.end_streams_after_next_event()
    await publish(channel, range(2, 3))
    await wait_for(page, refused(503))
    await publish(channel, range(3, 6))  # while refused
    gate.admit()
    assert await wait_for_items(page, 6) == [0, 1, 2, 3, 4, 5]
    await wait_for(page, "window.stream.state === 'live'")
    await publish(channel, range(6, 7))
    assert await wait_for_items(page, 7) == [0, 1, 2, 3, 4, 5, 6]

    events = (await log(page))["events"]
    last_seen = events[2][1]
    first, browser, *ours = gate.seen
    assert first.status == 200
    # The browser came back by itself with its Last-Event-ID, and was refused; every
    # request of pgsse.js (probes included) resumed from the last event the page saw.
    assert (browser.status, browser.last_event_id_header) == (503, last_seen)
    assert {(s.last_event_id_header, s.last_event_id_query) for s in ours} == {(None, last_seen)}
    assert [s.status for s in ours][-1] == 200
    states = [state for state, _ in (await log(page))["states"]]
    assert states[:3] == ["connecting", "live", "reconnecting"]
    assert states[-1] == "live"


async def no_retry_follows(page: Page) -> None:
    """Give a retry the time to happen: an absence is only seen over time. 2 s is five
    times the page's longest wait, so a retrying client would have come back by then."""
    await page.wait_for_timeout(5 * MAX_DELAY_MS)


async def test_a_403_from_the_stream_view_ends_in_denied_after_two_requests(
    stream_server: LiveServer, new_context: NewContext, gate: Gate
) -> None:
    # tests/urls.py's authorize hook refuses "secret:" channels: pgsse's own 403.
    page = await open_page(new_context, stream_server, gate.url("secret:plans"), ["secret:plans"])
    await wait_for(page, "window.stream.state === 'denied'")
    await no_retry_follows(page)

    # The refused EventSource, then the probe that learnt the status: nothing more.
    assert [s.status for s in gate.seen] == [403, 403]
    states = (await log(page))["states"]
    assert [state for state, _ in states] == ["connecting", "denied"]
    info = states[-1][1]
    assert info["status"] == 403
    assert info["body"] == "You may not read channel 'secret:plans'.\n"


async def test_a_401_on_reconnect_after_a_live_stream_ends_in_denied(
    stream_server: LiveServer, new_context: NewContext, gate: Gate, channel: str
) -> None:
    page = await open_page(new_context, stream_server, gate.url(channel), [channel])
    await wait_for(page, "window.stream.state === 'live'")
    gate.refuse(401)
    gate.end_streams_after_next_event()
    await publish(channel, range(0, 1))
    await wait_for(page, "window.stream.state === 'denied'")
    await no_retry_follows(page)

    # The browser's own reconnect and the probe after it: nothing more.
    assert [s.status for s in gate.seen] == [200, 401, 401]
    assert [data for data, _ in (await log(page))["events"]] == [0]
    states = (await log(page))["states"]
    assert [state for state, _ in states] == ["connecting", "live", "reconnecting", "denied"]
    assert states[-1][1]["status"] == 401


async def test_a_reset_reaches_the_page_and_later_reconnects_resume_after_it(
    stream_server: LiveServer, new_context: NewContext, gate: Gate, channel: str
) -> None:
    other = f"other:{uuid.uuid4().hex[:12]}"
    # The page-load position of another set of channels: the stream answers with reset.
    page = await open_page(new_context, stream_server, gate.url(channel), [other])
    await wait_for(page, "window.log.resets.length === 1")
    (reset,) = (await log(page))["resets"]
    assert reset["reason"] == "channels"
    assert reset["message"]
    assert reset["position"] == await sync_to_async(current_position)(channel)
    assert await page.evaluate("window.stream.position") == reset["position"]

    # Live from the reset's position; a reconnect after a refusal resumes from the last
    # event, not from the page-load position (that would be a second reset).
    gate.refuse(503, retry_after=1)
    gate.end_streams_after_next_event()
    await publish(channel, range(0, 1))
    await wait_for(page, refused(503))
    await publish(channel, range(1, 2))
    gate.admit()
    assert await wait_for_items(page, 2) == [0, 1]
    await wait_for(page, "window.stream.state === 'live'")
    assert len((await log(page))["resets"]) == 1
    assert [s.status for s in gate.seen][-1] == 200


async def test_close_ends_a_live_stream_and_a_waiting_reconnect(
    stream_server: LiveServer, new_context: NewContext, gate: Gate, channel: str
) -> None:
    page = await open_page(new_context, stream_server, gate.url(channel), [channel])
    await wait_for(page, "window.stream.state === 'live'")
    # The page is live once the headers arrive; the server subscribes right after.
    await until(lambda: stream_server.on_hub(subscriptions) == 1)
    await page.evaluate("window.stream.close()")
    await until(lambda: stream_server.on_hub(subscriptions) == 0)  # the server saw it go
    assert (await log(page))["states"][-1] == ["closed", {}]

    # Closed while it waits to reconnect: the timer is cleared, no request follows.
    gate.refuse(503, retry_after=1)
    waiting = await open_page(new_context, stream_server, gate.url(channel), [channel])
    await wait_for(waiting, refused(503))
    await waiting.evaluate("window.stream.close()")
    await no_retry_follows(waiting)
    assert [s.status for s in gate.seen] == [200, 503, 503]
    states = [state for state, _ in (await log(waiting))["states"]]
    assert states == ["connecting", "reconnecting", "closed"]


async def test_the_retry_delay_doubles_up_to_its_cap_with_jitter(
    stream_server: LiveServer, new_context: NewContext
) -> None:
    page = await (await new_context()).new_page()
    await page.goto(f"{stream_server.url}/pgsse-js/")
    delays = await page.evaluate(
        """() => {
          const delay = (attempt, retryAfter, random) =>
            pgsse.retryDelay(attempt, retryAfter, 1000, 30000, () => random);
          const attempts = [...Array(12).keys()];
          return {
            lowest: attempts.map((attempt) => delay(attempt, 0, 0)),
            highest: attempts.map((attempt) => delay(attempt, 0, 1)),
            afterRetryAfter: [delay(0, 5000, 0), delay(20, 5000, 1)],
            far: [delay(5000, 0, 1), delay(0, 1e15, 1)],
            defaults: pgsse.retryDelay(0),
            random: Array.from({length: 200}, () => pgsse.retryDelay(3, 0, 1000, 30000)),
          };
        }"""
    )
    steps = [min(30_000, 1000 * 2**attempt) for attempt in range(12)]
    assert delays["lowest"] == [step / 2 for step in steps]
    assert delays["highest"] == steps
    assert steps[-1] == 30_000  # capped from the sixth attempt on
    assert delays["afterRetryAfter"] == [5000 + 500, 5000 + 30_000]
    assert delays["far"] == [30_000, 2**31 - 1]  # no overflow, and setTimeout's limit
    assert 500 <= delays["defaults"] <= 1000
    # Jittered: spread over the upper half of the step, hardly ever twice the same.
    assert all(4000 <= delay <= 8000 for delay in delays["random"])
    assert len(set(delays["random"])) > 190
    assert min(delays["random"]) < 5000
    assert max(delays["random"]) > 7000


async def test_under_a_csp_nonce_the_script_tag_carries_it_and_runs(
    stream_server: LiveServer, new_context: NewContext, gate: Gate, channel: str
) -> None:
    query = urlencode({"stream": gate.url(channel), "position": channel})
    response = httpx.get(f"{stream_server.url}/pgsse-js/csp/?{query}")
    policy = response.headers["Content-Security-Policy"]
    nonce = policy.removeprefix("script-src 'nonce-").removesuffix("'")
    assert policy == f"script-src 'nonce-{nonce}'"
    assert f'<script src="/static/pgsse/pgsse.js" nonce="{nonce}"></script>' in response.text

    page = await (await new_context()).new_page()
    await page.goto(f"{stream_server.url}/pgsse-js/csp/?{query}")
    # The browser enforced the policy: the script without the nonce was blocked, and
    # pgsse.js, with it, ran; its stream works.
    assert await page.evaluate("window.scriptWithoutNonceRan") is None
    await page.evaluate(START, {"minDelay": MIN_DELAY_MS, "maxDelay": MAX_DELAY_MS})
    await wait_for(page, "window.stream.state === 'live'")
    # The same page without a policy runs both scripts.
    await page.goto(f"{stream_server.url}/pgsse-js/?{query}")
    assert await page.evaluate("window.scriptWithoutNonceRan") is True


async def test_an_unreachable_server_is_retried_with_growing_capped_delays(
    stream_server: LiveServer, new_context: NewContext
) -> None:
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{unused.getsockname()[1]}/events/room:x/"
        page = await open_page(new_context, stream_server, nowhere, [])
        await wait_for(page, "log.states.filter(([state]) => state === 'reconnecting').length >= 5")
        await page.evaluate("window.stream.close()")

    waits = [info for state, info in (await log(page))["states"] if state == "reconnecting"]
    assert [info["attempt"] for info in waits[:5]] == [1, 2, 3, 4, 5]
    for attempt, info in enumerate(waits):
        step = min(MAX_DELAY_MS, MIN_DELAY_MS * 2**attempt)
        assert step / 2 <= info["delay"] <= step


async def test_back_online_a_stream_cut_by_the_network_reconnects_at_once_missing_nothing(
    stream_server: LiveServer, new_context: NewContext, gate: Gate, channel: str
) -> None:
    page = await open_page(new_context, stream_server, gate.url(channel), [channel], True)
    await until_true(page, "window.stream.state === 'live'")
    await publish(channel, range(0, 2))
    await until_true(page, "window.log.events.length === 2")
    # From here the page's timers never fire: no backoff can end, only the network's
    # events can bring the stream back.
    await page.clock.pause_at(datetime.now() + timedelta(seconds=1))
    await page.context.set_offline(True)
    await until_true(page, "window.stream.state === 'reconnecting'")
    assert (await log(page))["states"][-1][1]["offline"] is True
    await publish(channel, range(2, 5))  # while offline
    requests = len(gate.seen)
    await page.context.set_offline(False)
    await until_true(page, "window.log.events.length >= 5")
    await until_true(page, "window.stream.state === 'live'")

    events = (await log(page))["events"]
    assert [data for data, _ in events] == [0, 1, 2, 3, 4]
    # One request, resuming from the last event seen before the network went.
    assert [(s.status, s.last_event_id_query) for s in gate.seen[requests:]] == [
        (200, events[1][1])
    ]
    assert [state for state, _ in (await log(page))["states"]] == [
        "connecting",
        "live",
        "reconnecting",
        "live",
    ]


async def test_the_network_events_leave_a_wait_the_server_asked_for_and_a_closed_stream(
    stream_server: LiveServer, new_context: NewContext, gate: Gate, channel: str
) -> None:
    gate.refuse(503, retry_after=30)
    page = await open_page(new_context, stream_server, gate.url(channel), [channel], True)
    await until_true(page, "window.log.states.some(([s, info]) => info.status === 503)")
    await page.clock.pause_at(datetime.now() + timedelta(seconds=1))
    await page.evaluate(
        "() => window.addEventListener('online', () => { window.log.online = true; })"
    )
    states = (await log(page))["states"]
    requests = len(gate.seen)
    await page.context.set_offline(True)
    await page.context.set_offline(False)
    await until_true(page, "window.log.online")
    await asyncio.sleep(1)  # a reconnect on "online" would have reached the gate by now
    assert len(gate.seen) == requests
    assert (await log(page))["states"] == states  # still waiting out the Retry-After

    await page.evaluate("() => window.stream.close()")
    gate.admit()
    await page.context.set_offline(True)
    await page.context.set_offline(False)
    await asyncio.sleep(1)
    assert len(gate.seen) == requests
    assert (await log(page))["states"][-1] == ["closed", {}]
