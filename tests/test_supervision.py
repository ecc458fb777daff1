"""The hub's background duties: restarted when they fail, all cancelled at close."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pgsse.stats import Counters
from pgsse.supervision import Supervisor


async def test_a_duty_that_fails_is_counted_logged_and_started_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counters = Counters()
    supervisor = Supervisor(counters, restart_delays=(0.001, 0.004))
    runs = 0
    resumed = asyncio.Event()

    async def sweep() -> None:
        nonlocal runs
        runs += 1
        if runs <= 3:
            raise RuntimeError(f"failure {runs}")
        resumed.set()
        await asyncio.Event().wait()  # works, forever

    with caplog.at_level(logging.ERROR, logger="pgsse.hub"):
        supervisor.keep_running("sweep", sweep)
        await asyncio.wait_for(resumed.wait(), 5)
    assert runs == 4
    assert counters.failures == 3
    failures = [r for r in caplog.records if "the hub's sweep failed" in r.getMessage()]
    assert len(failures) == 3
    assert all(record.exc_info for record in failures)  # with the traceback
    await supervisor.close()


async def test_a_duty_that_returns_is_started_again_too() -> None:
    supervisor = Supervisor(Counters(), restart_delays=(0.001, 0.001))
    runs = 0
    third = asyncio.Event()

    async def clock() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            third.set()

    supervisor.keep_running("clock", clock)
    await asyncio.wait_for(third.wait(), 5)
    await supervisor.close()


async def test_closing_cancels_and_awaits_every_task_and_refuses_new_ones() -> None:
    supervisor = Supervisor(Counters())
    cancelled = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.append(name)

    supervisor.keep_running("a duty", lambda: forever("duty"))
    supervisor.spawn(forever("one-off"))
    await asyncio.sleep(0)
    await supervisor.close()
    assert sorted(cancelled) == ["duty", "one-off"]
    supervisor.spawn(forever("late"))  # closed: never started, no "never awaited" warning
    await asyncio.sleep(0)
    assert "late" not in cancelled
