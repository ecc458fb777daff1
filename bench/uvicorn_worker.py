"""``python -m bench.uvicorn_worker APP PORT [--lifespan on|off]``: one bench uvicorn worker.

uvicorn as every bench server runs it (``--loop uvloop --http httptools``, warnings only,
no access log, backlog 4096, 3 s graceful shutdown), on a socket of its own bound with
``SO_REUSEPORT``, so that a second worker on the same port shares the connections (the
kernel spreads them). Two more things: it prints ``bench: listening`` once it serves, and a
tally of the garbage collector's pauses when it stops (per generation: collections, total
and longest pause; then each full collection's start on CLOCK_MONOTONIC and its length).
``PGSSE_BENCH_GC=off`` disables the collector instead, to see what a server costs without
it.
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import socket
import sys
import time
from types import FrameType
from typing import Literal

import uvicorn

_started: dict[int, tuple[float, float, float]] = {}
#: Per generation, each pause as (wall seconds, CPU seconds of the collecting thread): on a
#: shared machine the wall time includes waiting for a core, the CPU time does not.
_totals: dict[int, list[tuple[float, float]]] = {0: [], 1: [], 2: []}
#: Each full (generation 2) collection as (CLOCK_MONOTONIC at its start, wall seconds): the
#: driver, on the same system-wide clock, tells those with the streams open from the others
#: (start-up, opening, shutdown).
_full: list[tuple[float, float]] = []


def _track(phase: str, info: dict[str, int]) -> None:
    generation = info["generation"]
    if phase == "start":
        _started[generation] = (time.perf_counter(), time.thread_time(), time.monotonic())
    else:
        wall, cpu, at = _started.pop(generation, (0.0, 0.0, 0.0))
        pause = (time.perf_counter() - wall, time.thread_time() - cpu)
        _totals[generation].append(pause)
        if generation == 2:
            _full.append((at, pause[0]))


def _print_pauses() -> None:
    for generation, pauses in _totals.items():
        if pauses:
            print(
                f"gc generation {generation}: {len(pauses)} collections,"
                f" {sum(wall for wall, _ in pauses) * 1000:.0f} ms in all,"
                f" longest {max(wall for wall, _ in pauses) * 1000:.1f} ms"
                f" (CPU: longest {max(cpu for _, cpu in pauses) * 1000:.1f} ms)",
                file=sys.stderr,
                flush=True,
            )
    if _full:
        listed = " ".join(f"{at:.3f}:{wall * 1000:.1f}" for at, wall in _full)
        print(f"gc full at: {listed}", file=sys.stderr, flush=True)
    _totals.update({0: [], 1: [], 2: []})  # printed once
    _full.clear()


def _exit(signum: int, frame: FrameType | None) -> None:
    _print_pauses()
    sys.exit(0)


class _Server(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            print("bench: listening", file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    app, port = argv[0], int(argv[1])
    lifespan: Literal["on", "off"] = "off" if argv[2:] == ["--lifespan", "off"] else "on"
    if os.environ.get("PGSSE_BENCH_GC") == "off":
        gc.disable()
    gc.callbacks.append(_track)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan=lifespan,
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_graceful_shutdown=3,
    )
    # uvicorn restores the handler it found and re-raises the signal once it has stopped:
    # this one then reports.
    signal.signal(signal.SIGTERM, _exit)
    atexit.register(_print_pauses)  # also when the server stops by itself
    _Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1:])
