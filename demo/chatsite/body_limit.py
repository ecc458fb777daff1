"""Request bodies larger than the chat ever reads are refused before Django reads them.

Django's ASGI handler reads a request's whole body (spooled to a temporary file past
``FILE_UPLOAD_MAX_MEMORY_SIZE``) before any middleware or view runs, so a view's own size
check would come after a 10 GB upload had filled the disk. This wrapper answers 413 at
once when ``Content-Length`` says the body is too large, and when a body sent without one
(chunked) grows past the limit it stops reading, answers 413, and tells the application
the client is gone (Django then gives up on the request without answering).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.template.defaultfilters import filesizeformat

Message = dict[str, Any]


def _declared_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Callable[[Message], Any], limit: int) -> None:
    body = json.dumps(
        {"error": f"The request is too large: the chat reads at most {filesizeformat(limit)}."}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # Not "Connection: close": closing with the body still arriving resets the
                # connection, and the client, still sending, never reads this answer. Kept
                # open, the server reads the rest of the body and drops it, unread by Django.
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def limit_body(application: Any, limit: Callable[[], int]) -> Any:
    """``application`` refusing bodies over ``limit()`` bytes (read for each request, so
    that a change of settings applies at once)."""

    async def limited(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await application(scope, receive, send)
            return
        most = limit()
        declared = _declared_length(scope)
        if declared is not None and declared > most:
            await _refuse(send, most)
            return
        received = 0
        started = refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > most:
                    # The application is still reading the body: it has answered nothing.
                    if not started:
                        await _refuse(send, most)
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await application(scope, counted_receive, guarded_send)

    limited.__wrapped__ = application  # type: ignore[attr-defined]  # pgsse.asgi.is_wrapped()
    return limited
