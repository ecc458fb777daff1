"""Learn of a shutdown when the signal arrives, not when the server finally says so.

On SIGTERM, uvicorn and granian first wait for open connections to close and only then
send ``lifespan.shutdown``: an SSE stream never closes by itself, so a lifespan hook
learns of the shutdown too late. The hub therefore chains a handler in front of the
server's own (installed with ``signal.signal``): it ends every stream with a ``retry:``
hint, waits until they have written it (at most ``DRAIN_SECONDS``), and then calls the
previous handler, so the server proceeds as it would have. Waiting matters under daphne,
whose handler stops the event loop at once and cancels every stream: handed on at once,
no stream got its ``retry:`` out. A second signal is handed on at once. Only the main
thread may install handlers; elsewhere this does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Protocol

__all__ = ["DRAIN_SECONDS", "install_shutdown_handlers"]

logger = logging.getLogger("pgsse.shutdown")

_SIGNALS = (signal.SIGTERM, signal.SIGINT)

#: Seconds the streams get to write their last ``retry:`` before the server's own handler
#: runs (a stream stuck writing is cut off by the hub's clock meanwhile).
DRAIN_SECONDS = 2.0

Handler = Callable[[int, FrameType | None], object] | int | None

#: The tasks handing a signal on, kept until they are done.
_handing_on: set[asyncio.Task[None]] = set()


class _EndsStreams(Protocol):
    def end_streams(self) -> None: ...
    async def streams_ended(self, timeout: float) -> None: ...


def install_shutdown_handlers(hub: _EndsStreams) -> bool:
    """Chain SIGTERM/SIGINT handlers that end ``hub``'s streams; True if installed."""
    if threading.current_thread() is not threading.main_thread():
        return False
    loop = asyncio.get_running_loop()
    for signum in _SIGNALS:
        previous = signal.getsignal(signum)
        signal.signal(signum, _handler(loop, hub, previous))
    return True


def _handler(
    loop: asyncio.AbstractEventLoop, hub: _EndsStreams, previous: Handler
) -> Callable[[int, FrameType | None], None]:
    signalled = False

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal signalled
        if signalled or loop.is_closed():
            _hand_on(previous, signum, frame)  # again: the operator insists
            return
        signalled = True
        loop.call_soon_threadsafe(_end_streams_then_hand_on, hub, previous, signum, frame)

    return handle


def _end_streams_then_hand_on(
    hub: _EndsStreams, previous: Handler, signum: int, frame: FrameType | None
) -> None:
    hub.end_streams()

    async def drain() -> None:
        try:
            await hub.streams_ended(DRAIN_SECONDS)
        finally:
            _hand_on(previous, signum, frame)

    task = asyncio.get_running_loop().create_task(drain())
    _handing_on.add(task)
    task.add_done_callback(_handing_on.discard)


def _hand_on(previous: Handler, signum: int, frame: FrameType | None) -> None:
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
