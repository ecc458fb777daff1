"""``python -m bench.gc_timing APP [uvicorn options]``: uvicorn, the GC's pauses timed.

Exactly ``python -m uvicorn APP [options]``, plus a tally printed when the server stops:
per generation, how many collections ran, their total and longest pause.
``PGSSE_BENCH_GC=off`` disables the collector instead, to see what the stream path costs
without it.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from types import FrameType

import uvicorn

_started: dict[int, float] = {}
_totals: dict[int, list[float]] = {0: [], 1: [], 2: []}


def _track(phase: str, info: dict[str, int]) -> None:
    generation = info["generation"]
    if phase == "start":
        _started[generation] = time.perf_counter()
    else:
        _totals[generation].append(time.perf_counter() - _started.pop(generation, 0.0))


def _print_pauses() -> None:
    for generation, pauses in _totals.items():
        if pauses:
            print(
                f"gc generation {generation}: {len(pauses)} collections,"
                f" {sum(pauses) * 1000:.0f} ms in all, longest {max(pauses) * 1000:.1f} ms",
                file=sys.stderr,
                flush=True,
            )


def _exit(signum: int, frame: FrameType | None) -> None:
    _print_pauses()
    sys.exit(0)


def main() -> None:
    if os.environ.get("PGSSE_BENCH_GC") == "off":
        gc.disable()
    gc.callbacks.append(_track)
    # uvicorn restores the handler it found and re-raises the signal once it has stopped:
    # this one then reports.
    signal.signal(signal.SIGTERM, _exit)
    uvicorn.main(sys.argv[1:])


if __name__ == "__main__":
    main()
