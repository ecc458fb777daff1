"""What operators read: /metrics, /healthz, /readyz, log lines, manage.py pgsse_stats.

Served by a real uvicorn (tests/urls.py includes pgsse.urls), read with real HTTP clients.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

import pgsse
from pgsse.logging import JsonFormatter
from tests.clients import open_stream, stream_client
from tests.postgres import Postgres
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

publish = sync_to_async(pgsse.publish)
TOKEN = "t0ken-for-the-metrics-test"


@pytest.fixture
def ops_server(transactional_db: None, pg: Postgres) -> Iterator[LiveServer]:
    from django.core.asgi import get_asgi_application

    import pgsse.asgi

    with override_settings(ROOT_URLCONF="tests.urls"):
        live = LiveServer(pgsse.asgi.wrap(get_asgi_application())).start()
        yield live
        live.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, keyed by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(url: str, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_metrics_show_streams_deliveries_lag_publishes_and_the_queue(
    ops_server: LiveServer,
) -> None:
    before = await scrape(ops_server.url)
    async with (
        stream_client(ops_server.url) as client,
        open_stream(client, "/events/room:m/") as first,
        open_stream(client, "/events/room:m/") as second,
        open_stream(client, "/events/room:m/") as third,
    ):
        for reader in (first, second, third):
            await reader.wait_for(lambda r: bool(r.last_id))
        for n in range(4):
            await publish("room:m", "e", n)
        for reader in (first, second, third):
            await reader.wait_for(lambda r: len(r.of_type("e")) == 4)
        during = await scrape(ops_server.url)
    after = await scrape(ops_server.url)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return during[key] - before.get(key, 0.0)

    assert during[("pgsse_streams_open", ())] == 3
    assert during[("pgsse_channels", ())] == 1
    assert during[("pgsse_listener_connected", ())] == 1
    assert during[("pgsse_hub_running", ())] == 1
    assert delta("pgsse_streams_opened_total") == 3
    assert delta("pgsse_events_delivered_total") == 12  # 4 events x 3 streams
    # One lag observation per event fanned out, not per stream.
    assert delta("pgsse_delivery_lag_seconds_count") == 4
    assert delta("pgsse_delivery_lag_seconds_bucket", le="+Inf") == 4
    assert 0 <= delta("pgsse_delivery_lag_seconds_sum") < 4 * 10
    assert delta("pgsse_published_events_total") == 4  # publish() ran in this process
    assert 0 <= during[("pgsse_notification_queue_usage", ())] < 0.01
    assert during[("pgsse_last_notification_age_seconds", ())] < 30
    assert ("pgsse_streams_refused_total", (("reason", "process_full"),)) in during
    assert ("process_resident_memory_bytes", ()) in during
    # The streams left: closed as client_left once the server noticed.
    for _ in range(100):
        if after[("pgsse_streams_open", ())] == 0:
            break
        await asyncio.sleep(0.05)
        after = await scrape(ops_server.url)
    assert after[("pgsse_streams_open", ())] == 0
    key = ("pgsse_streams_closed_total", (("reason", "client_left"),))
    assert after[key] - before.get(key, 0) == 3


async def test_metrics_are_off_by_default_and_need_an_allowed_address_or_the_token(
    ops_server: LiveServer,
) -> None:
    async def status(headers: dict[str, str] | None = None, source: str = "127.0.0.1") -> int:
        transport = httpx.AsyncHTTPTransport(local_address=source)
        async with httpx.AsyncClient(base_url=ops_server.url, transport=transport) as client:
            return (await client.get("/metrics", headers=headers)).status_code

    with override_settings(PGSSE={}):
        assert await status() == 404
    with override_settings(PGSSE={"METRICS_ALLOW_FROM": ["127.0.0.1"]}):
        assert await status() == 200
        assert await status(source="127.0.0.2") == 403  # another loopback address
    with override_settings(PGSSE={"METRICS_ALLOW_FROM": ["10.0.0.0/8"]}):
        assert await status() == 403
    with override_settings(PGSSE={"METRICS_TOKEN": TOKEN}):
        assert await status() == 403
        assert await status({"Authorization": f"Bearer {TOKEN}"}, source="127.0.0.2") == 200
        assert await status({"Authorization": f"Bearer {TOKEN}x"}) == 403
        assert await status({"Authorization": f"Basic {TOKEN}"}) == 403


async def test_healthz_answers_and_readyz_follows_the_listener_and_the_log(
    ops_server: LiveServer, restartable_pg: Postgres
) -> None:
    pg = restartable_pg
    async with httpx.AsyncClient(base_url=ops_server.url) as client:
        assert (await client.get("/healthz")).text == "ok\n"

        async def ready() -> httpx.Response:
            for _ in range(200):
                response = await client.get("/readyz")
                if response.status_code == 200:
                    return response
                await asyncio.sleep(0.05)
            raise AssertionError(f"never ready: {response.text}")

        assert (await ready()).json() == {"ready": True}
        pg.stop()
        try:
            response = await client.get("/readyz")
            assert response.status_code == 503
            problems = " ".join(response.json()["problems"])
            assert "event log" in problems
            assert (await client.get("/healthz")).status_code == 200  # liveness unaffected
        finally:
            pg.start()
        await ready()
        ops_server.on_hub(lambda hub: hub.end_streams())
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["problems"] == ["the process is shutting down"]


async def test_readyz_says_not_ready_while_the_process_refuses_every_new_stream(
    transactional_db: None, pg: Postgres
) -> None:
    """A full process (MAX_STREAMS) answers 503 to every new stream: a load balancer must
    hear it from /readyz too, and send new clients elsewhere until a place frees up."""
    from django.conf import settings
    from django.core.asgi import get_asgi_application

    import pgsse.asgi

    with override_settings(ROOT_URLCONF="tests.urls", PGSSE={**settings.PGSSE, "MAX_STREAMS": 2}):
        server = LiveServer(pgsse.asgi.wrap(get_asgi_application())).start()
        try:
            async with stream_client(server.url) as client:

                async def readiness(status: int) -> httpx.Response:
                    for _ in range(200):
                        response = await client.get("/readyz")
                        if response.status_code == status:
                            return response
                        await asyncio.sleep(0.05)
                    raise AssertionError(f"/readyz never answered {status}: {response.text}")

                await readiness(200)
                async with open_stream(client, "/events/full:1/") as first:
                    async with open_stream(client, "/events/full:2/") as second:
                        await first.wait_for(lambda r: bool(r.last_id))
                        await second.wait_for(lambda r: bool(r.last_id))
                        refused = await client.get("/events/full:3/")
                        assert refused.status_code == 503, refused.text
                        response = await client.get("/readyz")
                        assert response.status_code == 503, response.text
                        assert response.json()["ready"] is False
                        (problem,) = response.json()["problems"]
                        assert "2 streams, its limit (MAX_STREAMS)" in problem, problem
                        assert (await client.get("/healthz")).status_code == 200
                    # One place free again: ready, and a new stream is admitted.
                    assert (await readiness(200)).json() == {"ready": True}
                    async with open_stream(client, "/events/full:3/") as third:
                        assert third.status_code == 200
        finally:
            server.stop()


async def test_a_listener_reconnect_logs_one_line_with_the_gap_it_fills(
    ops_server: LiveServer, pg: Postgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pgsse")
    slow = {"RECONNECT_MIN_DELAY": 1.5, "RECONNECT_MAX_DELAY": 1.5, "METRICS_ALLOW_FROM": []}
    async with (
        stream_client(ops_server.url) as client,
        open_stream(client, "/events/room:gap/") as reader,
    ):
        await reader.wait_for(lambda r: bool(r.last_id))
        with override_settings(PGSSE=slow):  # read by the listener when it reconnects
            pid = ops_server.on_hub(lambda hub: hub.listener_pid)
            async with await psycopg.AsyncConnection.connect(pg.url, autocommit=True) as admin:
                await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            for _ in range(100):  # until the hub knows, so the events fall in the gap
                if ops_server.on_hub(lambda hub: hub.listener_pid) is None:
                    break
                await asyncio.sleep(0.01)
            for n in range(3):
                await publish("room:gap", "e", n)
            await reader.wait_for(lambda r: len(r.of_type("e")) == 3, timeout=15)
    lines = [r for r in caplog.records if r.getMessage().startswith("listener reconnected")]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    line = json.loads(JsonFormatter().format(lines[0]))
    assert line["gap_events"] == 3
    assert line["gap_channels"] == 1
    assert line["outage"] > 0
    assert "filling 3 events on 1 of" in line["message"]


async def test_stream_open_and_close_lines_carry_channels_user_duration_events_and_why(
    ops_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pgsse.stream")
    async with (
        stream_client(ops_server.url) as client,
        open_stream(client, "/events/room:logged/") as reader,
    ):
        await reader.wait_for(lambda r: bool(r.last_id))
        await publish("room:logged", "e", 1)
        await reader.wait_for(lambda r: bool(r.of_type("e")))
        ops_server.on_hub(lambda hub: hub.end_streams())
        await reader.wait_for(lambda r: r.ended)
    for _ in range(100):
        closed = [r for r in caplog.records if r.getMessage().startswith("stream closed")]
        if closed:
            break
        await asyncio.sleep(0.05)
    opened = [r for r in caplog.records if r.getMessage().startswith("stream opened")]
    assert len(opened) == 1
    assert len(closed) == 1
    line = json.loads(JsonFormatter().format(closed[0]))
    assert line["channels"] == ["room:logged"]
    assert line["client"] == ""  # anonymous
    assert line["reason"] == "shutdown"
    assert line["events"] == 1
    assert line["duration"] >= 0


async def test_pgsse_stats_shows_prefixes_queue_and_listener_connections(
    ops_server: LiveServer,
) -> None:
    for channel in ("room:s1", "room:s2", "room:s2", "typing:s1"):
        await publish(channel, "e", 1)
    async with (
        stream_client(ops_server.url) as client,
        open_stream(client, "/events/room:s1/") as reader,
    ):
        await reader.wait_for(lambda r: bool(r.last_id))
        pid = ops_server.on_hub(lambda hub: hub.listener_pid)
        out = io.StringIO()
        await sync_to_async(call_command)("pgsse_stats", "--json", stdout=out)
        text = io.StringIO()
        await sync_to_async(call_command)("pgsse_stats", stdout=text)
    report = json.loads(out.getvalue())
    prefixes = {entry["prefix"]: entry for entry in report["prefixes"]}
    assert (prefixes["room:"]["channels"], prefixes["room:"]["events"]) == (2, 3)
    assert (prefixes["typing:"]["channels"], prefixes["typing:"]["events"]) == (1, 1)
    assert prefixes["room:"]["oldest"] is not None
    assert report["channels"] >= 3
    assert 0 <= report["notification_queue_usage"] < 0.01
    assert pid in [listener["pid"] for listener in report["listeners"]]
    assert "Listener connections:" in text.getvalue()
    assert "room:" in text.getvalue()


def test_pgsse_prune_says_what_it_pruned_in_words() -> None:
    with override_settings(PGSSE={"RETENTION": {"words:": {"max_events": 1}}}):
        pgsse.publish("words:a", "e", 1)
        pgsse.publish("words:a", "e", 2)
        out = io.StringIO()
        call_command("pgsse_prune", stdout=out)
        assert out.getvalue() == "Pruned 1 event from 1 channel.\n"
        for n in range(3, 6):
            pgsse.publish("words:a", "e", n)
            pgsse.publish("words:b", "e", n)
        out = io.StringIO()
        call_command("pgsse_prune", stdout=out)
        assert out.getvalue() == "Pruned 5 events from 2 channels.\n"
