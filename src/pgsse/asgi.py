"""``wrap()``: an ASGI application that runs pgsse's hub across the server's lifespan.

Django's ASGI handler refuses the lifespan protocol. Wrapped, the application answers it:
the hub starts with the worker (instead of on the first stream) and, at shutdown, ends
every stream and closes its connections::

    from django.core.asgi import get_asgi_application
    import pgsse.asgi

    application = pgsse.asgi.wrap(get_asgi_application())

Streams are ended earlier than lifespan shutdown, when SIGTERM arrives (see
:mod:`pgsse.signals`); without the wrapper the hub starts on the first stream instead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pgsse.hub import close_hub, get_hub

__all__ = ["wrap"]

logger = logging.getLogger("pgsse.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[Any]]


def wrap(app: Callable[..., Awaitable[Any]]) -> ASGIApp:
    """``app`` with pgsse's lifespan handling in front of it."""

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        else:
            await app(scope, receive, send)

    return application


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                get_hub()
            except Exception as exc:
                logger.exception("pgsse could not start")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await close_hub()
            await send({"type": "lifespan.shutdown.complete"})
            return
