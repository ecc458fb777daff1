"""The log reader's connections: at most two, made by the reads that need them.

Not a psycopg_pool pool: a pool makes and replaces connections in tasks of its own, and one
it starts while the event loop ends (``asyncio.run()`` cancels the tasks that exist when its
coroutine returns, not one started meanwhile) is left half-made, a connection nobody
closes; found by the test of the hubs whose loop ends. Here a connection is made by the
read that needs it, in that read's task, and :meth:`ReaderConnections.close` closes every
one, idle or in use.

An idle connection is handed out without a check (a check is a round trip per read): a
read that fails on one that was idle (the database restarted meanwhile) is tried again on
another, then on a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus

__all__ = ["ReaderConnections", "shut"]

Connect = Callable[[], Awaitable[AsyncConnection[Any]]]


class ReaderConnections:
    """At most ``size`` connections made by ``connect``; a read waits at most ``wait``
    seconds for one."""

    def __init__(self, connect: Connect, size: int, wait: float) -> None:
        self._connect = connect
        self._size = size
        self._wait = wait
        self._idle: list[AsyncConnection[Any]] = []
        self._in_use: set[AsyncConnection[Any]] = set()
        self._making = 0
        self._waiting: list[asyncio.Future[None]] = []
        self._closed = False

    @property
    def count(self) -> int:
        """Connections open or being made."""
        return len(self._idle) + len(self._in_use) + self._making

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[tuple[AsyncConnection[Any], bool]]:
        """A connection for one read, and whether it is new (not idle before). Given back
        when the block ends; closed instead if the block raised or left it mid-query."""
        conn, new = await self._take()
        self._in_use.add(conn)
        kept = False
        try:
            yield conn, new
            kept = conn.info.transaction_status == TransactionStatus.IDLE
        finally:
            self._in_use.discard(conn)
            if kept and not self._closed and not conn.closed:
                self._idle.append(conn)
            else:
                await conn.close()
            self._wake_one()

    async def close(self) -> None:
        """Close every connection: the idle ones now, those in use by shutting their
        socket down (their reads fail at once and close them)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
        for conn in list(self._in_use):
            shut(conn)
        for waiter in self._waiting:
            if not waiter.done():
                waiter.set_result(None)

    async def _take(self) -> tuple[AsyncConnection[Any], bool]:
        async with asyncio.timeout(self._wait):
            while True:
                if self._closed:
                    raise psycopg.OperationalError("the log reader is closed")
                if self._idle:
                    return self._idle.pop(), False
                if self.count < self._size:
                    return await self._make(), True
                waiter = asyncio.get_running_loop().create_future()
                self._waiting.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter in self._waiting:
                        self._waiting.remove(waiter)

    async def _make(self) -> AsyncConnection[Any]:
        self._making += 1
        try:
            conn = await self._connect()
        finally:
            self._making -= 1
        if self._closed:  # closed while this one was being made: nobody would close it
            await conn.close()
            raise psycopg.OperationalError("the log reader is closed")
        return conn

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return


def shut(conn: AsyncConnection[Any]) -> None:
    """Shut ``conn``'s socket down: whatever waits on it wakes up to an error."""
    try:
        sock = socket.socket(fileno=os.dup(conn.fileno()))
    except (OSError, psycopg.Error):
        return  # closed already
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()
