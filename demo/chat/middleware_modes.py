"""The base of the chat's middleware that runs in the request's own mode.

Django hands a middleware the next handler and lets it say whether it can run sync, async
or both. The chat's own middleware runs both ways without a thread hop: synchronously under
pgsse's request phase and the WSGI-style test client, asynchronously under Django's ASGI
handler (``MiddlewareMixin`` would run its hooks through ``sync_to_async`` there).
Subclasses define ``__call__`` for the synchronous mode and ``__acall__`` for the other,
and start ``__call__`` with ``if self.is_async: return self.__acall__(request)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest


class SyncAndAsyncMiddleware:
    """Runs as the handler it wraps does; marked a coroutine function when that is async."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        raise NotImplementedError  # each subclass answers in both modes
