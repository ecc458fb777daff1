"""The listener against a fake connection: how it LISTENs again to many channels.

PostgreSQL's cost of a LISTEN grows with the channels the session already listens to
(measured: 10,000 channels in one statement took 0.41 s, 50,000 took 5.4 s), so one
statement for every channel after a reconnect does not finish within HEALTH_TIMEOUT above
about 45,000. The fake connection injects that fault: a statement of more than 1,000
LISTENs never completes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from psycopg import sql

from pgsse.conf import PgsseSettings
from pgsse.listener import LISTEN_CHUNK, Listener

SETTINGS = PgsseSettings(HEALTH_INTERVAL=60.0, HEALTH_TIMEOUT=0.5, RECONNECT_MIN_DELAY=0.01)


@dataclasses.dataclass
class Info:
    backend_pid: int


class SlowToListen:
    """A connection on which a statement of more than ``LISTEN_CHUNK`` LISTENs hangs."""

    def __init__(self, statements: list[int]) -> None:
        self.info = Info(4242)
        self.statements = statements

    async def execute(self, statement: sql.Composable) -> None:
        listens = statement.as_string(None).count("LISTEN ")
        self.statements.append(listens)
        if listens > LISTEN_CHUNK:
            await asyncio.Event().wait()  # past HEALTH_TIMEOUT: the connection is dropped

    async def notifies(self, timeout: float) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield None  # never reached: no notification comes

    async def close(self) -> None:
        pass


async def test_thousands_of_channels_are_listened_in_chunks_on_one_connection() -> None:
    statements: list[int] = []
    connections = 0
    listened: set[str] = set()
    all_in = asyncio.Event()
    wanted = {f"pgsse_{n}" for n in range(5 * LISTEN_CHUNK + 17)}

    async def connect() -> Any:
        nonlocal connections
        connections += 1
        return SlowToListen(statements)

    def on_listening(channels: set[str]) -> None:
        listened.update(channels)
        if listened == wanted:
            all_in.set()

    listener = Listener(connect, lambda *_: None, on_listening, lambda: None, SETTINGS)
    for name in wanted:
        listener.want_more(name)
    listener.start()
    try:
        await asyncio.wait_for(all_in.wait(), 10)
        assert listener.listening == wanted
        assert connections == 1  # never timed out, never reconnected
        assert max(statements) <= LISTEN_CHUNK
        assert len(statements) == 6
    finally:
        await listener.close()


class Gated:
    """A connection whose statements wait until ``gate`` opens, and which says when one
    has started."""

    def __init__(self) -> None:
        self.info = Info(4242)
        self.statements: list[str] = []
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    async def execute(self, statement: sql.Composable) -> None:
        self.statements.append(statement.as_string(None))
        self.started.set()
        await self.gate.wait()

    async def notifies(self, timeout: float) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield None  # never reached: no notification comes

    async def close(self) -> None:
        pass


async def until(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_channel_let_go_of_while_its_listen_runs_is_unlistened() -> None:
    conn = Gated()

    async def connect() -> Any:
        return conn

    listener = Listener(connect, lambda *_: None, lambda _: None, lambda: None, SETTINGS)
    listener.want_more("pgsse_a")
    listener.start()
    try:
        await asyncio.wait_for(conn.started.wait(), 5)
        listener.want_less("pgsse_a")  # while its LISTEN is in flight
        conn.gate.set()
        await until(lambda: any("UNLISTEN" in s for s in conn.statements))
        await until(lambda: not listener.listening)
        assert [s.split()[0] for s in conn.statements] == ["LISTEN", "UNLISTEN"]
    finally:
        await listener.close()


async def test_a_channel_wanted_again_while_its_unlisten_runs_is_listened_again() -> None:
    conn = Gated()
    conn.gate.set()

    async def connect() -> Any:
        return conn

    listener = Listener(connect, lambda *_: None, lambda _: None, lambda: None, SETTINGS)
    listener.want_more("pgsse_a")
    listener.start()
    try:
        await until(lambda: listener.listening == {"pgsse_a"})
        conn.gate.clear()
        conn.started.clear()
        listener.want_less("pgsse_a")
        await asyncio.wait_for(conn.started.wait(), 5)
        listener.want_more("pgsse_a")  # while its UNLISTEN is in flight
        conn.gate.set()
        await until(lambda: len(conn.statements) == 3)
        await until(lambda: listener.listening == {"pgsse_a"})
        assert [s.split()[0] for s in conn.statements] == ["LISTEN", "UNLISTEN", "LISTEN"]
    finally:
        await listener.close()


async def connected(conn: SlowToListen) -> Any:
    return conn


class Completes(SlowToListen):
    """A connection whose statement completes when the test says so."""

    def __init__(self, statements: list[int]) -> None:
        super().__init__(statements)
        self.entered = asyncio.Event()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def execute(self, statement: sql.Composable) -> None:
        self.statements.append(statement.as_string(None).count("LISTEN "))
        self.entered.set()
        await self.done


async def running_its_first_statement(conn: Completes) -> tuple[Listener, asyncio.Task[None]]:
    """A listener on ``conn``, started and waiting for its first LISTEN to complete."""
    listener = Listener(
        lambda: connected(conn), lambda *_: None, lambda _: None, lambda: None, SETTINGS
    )
    listener.want_more("pgsse_a")
    listener.start()
    await asyncio.wait_for(conn.entered.wait(), 10)
    task = listener._task
    assert task is not None
    return listener, task


async def test_closing_as_a_statement_completes_ends_the_listener() -> None:
    """The statement ends and the hub closes the listener in the same turn of the loop (a
    hub closing right after its last stream left asked for an UNLISTEN): the cancellation
    must not be lost (Python 3.11's ``asyncio.wait_for`` lost it, and the hub's close
    then waited forever)."""
    conn = Completes([])
    listener, task = await running_its_first_statement(conn)
    conn.done.set_result(None)
    await asyncio.wait_for(listener.close(), 10)
    assert task.cancelled()


class LosesACancellation(Completes):
    """A connection whose statement, cancelled, returns as if it had completed (a library
    that swallows the cancellation)."""

    lost = 0

    async def execute(self, statement: sql.Composable) -> None:
        try:
            await super().execute(statement)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()
            self.lost += 1


async def test_closing_ends_the_listener_even_if_a_cancellation_is_swallowed() -> None:
    conn = LosesACancellation([])
    listener, task = await running_its_first_statement(conn)
    await asyncio.wait_for(listener.close(), 10)  # cancelled again: it ends
    assert task.cancelled()
    assert conn.lost == 1  # the first cancellation was lost: it went on
