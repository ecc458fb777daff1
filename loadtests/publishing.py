"""Many users posting through the chat's HTTP API, at a steady rate in all.

Each post is ``POST /api/rooms/<slug>/messages/`` with the user's API token, sent to a
worker chosen at random, as a load balancer would. A post that fails (a worker stopping,
PostgreSQL restarting) is counted and not retried: whether it committed or not, the log
says, and the invariant checker reads the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Post:
    sent: float
    done: float
    room: str
    status: int  # 0: no answer (connection refused or cut)
    message_id: int | None = None


@dataclass
class Publisher:
    ports: list[int]
    rooms: list[str]
    tokens: list[str]
    per_second: float
    posts: list[Post] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Post at ``per_second`` until stopped, one user after the other."""
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        async with httpx.AsyncClient(timeout=15, limits=limits) as client:
            users = itertools.cycle(self.tokens)
            interval = 1 / self.per_second
            next_at = time.monotonic()
            running: set[asyncio.Task[bool]] = set()
            while not self._stop.is_set():
                task = asyncio.create_task(
                    self._post(client, next(users), random.choice(self.rooms))
                )
                running.add(task)
                task.add_done_callback(running.discard)
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), delay)
            await asyncio.gather(*running, return_exceptions=True)

    def stop(self) -> None:
        self._stop.set()

    async def burst(self, room: str, count: int, size: int) -> int:
        """Post ``count`` messages of ``size`` characters to ``room`` as fast as the API
        takes them (a few at a time); return how many were stored."""
        stored = 0
        text = "z" * size
        async with httpx.AsyncClient(timeout=15) as client:
            for start in range(0, count, 8):
                results = await asyncio.gather(
                    *(
                        self._post(client, random.choice(self.tokens), room, text)
                        for _ in range(min(8, count - start))
                    )
                )
                stored += sum(results)
        return stored

    async def _post(
        self, client: httpx.AsyncClient, token: str, room: str, text: str | None = None
    ) -> bool:
        port = random.choice(self.ports)
        sent = time.time()
        body = {"text": text or f"hello from the load test at {sent:.3f}"}
        try:
            response = await client.post(
                f"http://127.0.0.1:{port}/api/rooms/{room}/messages/",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
            status = response.status_code
            message_id = response.json().get("id") if status == 201 else None
        except (httpx.HTTPError, ValueError):
            status, message_id = 0, None
        self.posts.append(Post(sent, time.time(), room, status, message_id))
        return status == 201

    def errors_between(self, start: float, end: float) -> int:
        return sum(1 for p in self.posts if start <= p.sent <= end and p.status != 201)
