"""Learn of a shutdown when the signal arrives, not when the server finally says so.

On SIGTERM, uvicorn and granian first wait for open connections to close and only then
send ``lifespan.shutdown``: an SSE stream never closes by itself, so a lifespan hook
learns of the shutdown too late. The hub therefore chains a handler in front of the
server's own (installed with ``signal.signal``): it ends every stream with a ``retry:``
hint and then calls the previous handler, so the server proceeds as it would have.
Only the main thread may install handlers; elsewhere this does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Protocol

__all__ = ["install_shutdown_handlers"]

logger = logging.getLogger("pgsse.shutdown")

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _EndsStreams(Protocol):
    def end_streams(self) -> None: ...


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
    loop: asyncio.AbstractEventLoop,
    hub: _EndsStreams,
    previous: Callable[[int, FrameType | None], object] | int | None,
) -> Callable[[int, FrameType | None], None]:
    def handle(signum: int, frame: FrameType | None) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(hub.end_streams)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    return handle
