"""A project with ``ATOMIC_REQUESTS = True`` (tests/settings_atomic.py): Django runs every
view in a transaction and refuses async views there, unless they are exempt. pgsse's
probes, metrics and streams are, in a real worker process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from asgiref.sync import sync_to_async

import pgsse
from tests.clients import open_stream, stream_client
from tests.postgres import Postgres
from tests.processes import ServerProcess, project_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def atomic_worker(transactional_db: None, pg: Postgres) -> Iterator[ServerProcess]:
    worker = project_worker(pg.url, settings="tests.settings_atomic").start()
    try:
        yield worker
    finally:
        worker.stop()


async def wait_until_ready(client: httpx.AsyncClient) -> None:
    for _ in range(200):
        response = await client.get("/readyz")
        if response.status_code == 200:
            return
        assert response.status_code == 503, response.text  # not ready yet, never a 500
        await asyncio.sleep(0.05)
    raise AssertionError(f"never ready: {response.text}")


async def test_probes_metrics_and_streams_answer_under_atomic_requests(
    atomic_worker: ServerProcess,
) -> None:
    async with stream_client(atomic_worker.url) as client:
        # The project's own sync views do run in a transaction: the setting is on.
        assert (await client.get("/in-transaction/")).json() == {"in_transaction": True}
        health = await client.get("/healthz")
        assert (health.status_code, health.text) == (200, "ok\n")
        await wait_until_ready(client)
        assert (await client.head("/readyz")).status_code == 200
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200, metrics.text
        assert "pgsse_hub_running 1.0" in metrics.text
        async with open_stream(client, "/events/atomic:1/") as reader:
            assert reader.status_code == 200
            await reader.wait_for(lambda r: bool(r.last_id))
            await sync_to_async(pgsse.publish)("atomic:1", "e", {"n": 1})
            await reader.wait_for(lambda r: bool(r.of_type("e")))
            assert [json.loads(e.data) for e in reader.of_type("e")] == [{"n": 1}]
    assert "Traceback" not in atomic_worker.output()
