"""The chat's own "Not found" page for every page that is not found, under ``DEBUG`` too.

Under ``DEBUG`` (``make run``) Django answers a 404 with its technical page, which lists
every URL pattern of the site: a stale link would show people the site's map instead of
the way back. :class:`NotFoundPageMiddleware` answers with the chat's page instead, in
both modes: a view's ``Http404`` keeps its message ("There is no room #x"); any other HTML
404 (no URL matched, the admin's) gets the page with a plain message. JSON 404s (the API,
the streams) are left alone, and so is the trailing-slash redirect (``APPEND_SLASH``:
``CommonMiddleware`` sits outside this one and still sees a 404 to redirect).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotFound
from django.shortcuts import render
from django.utils.html import escape

NOTHING_HERE = "There is nothing here: the link may be out of date."


def message_of(exception: Exception | None) -> str:
    """What to tell people: a view's own message; never a resolver's (a dict naming the
    patterns it tried)."""
    if exception is not None and exception.args and isinstance(exception.args[0], str):
        return exception.args[0] or NOTHING_HERE
    return NOTHING_HERE


def not_found_page(request: HttpRequest, message: str) -> HttpResponse:
    response = render(request, "chat/not_found.html", {"message": message}, status=404)
    response.chat_not_found = True  # type: ignore[attr-defined]
    return response


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404`` (when ``DEBUG`` is off): a bare page carrying the message, which the
    middleware replaces with the chat's.

    Not rendered here: under ASGI Django calls this handler in a thread of its own
    (``thread_sensitive=False``), where the page's session and user look-ups would open a
    database connection that nothing closes.
    """
    message = message_of(exception)
    response = HttpResponseNotFound(f"<!doctype html><title>Not found</title><p>{escape(message)}")
    response.chat_message = message  # type: ignore[attr-defined]
    return response


def _replaced(response: HttpResponse) -> bool:
    """Whether ``response`` is an HTML 404 that is not the chat's page."""
    return (
        response.status_code == 404
        and not getattr(response, "chat_not_found", False)
        and response.get("Content-Type", "").startswith("text/html")
    )


def _message(response: HttpResponse) -> str:
    return str(getattr(response, "chat_message", NOTHING_HERE))


class NotFoundPageMiddleware:
    """Every HTML 404 is the chat's page (sync and async; costs nothing on other answers)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        response: HttpResponse = self.get_response(request)
        return not_found_page(request, _message(response)) if _replaced(response) else response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        pending: Awaitable[HttpResponse] = self.get_response(request)
        response = await pending
        if _replaced(response):
            return await sync_to_async(not_found_page)(request, _message(response))
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view's ``Http404``, before Django turns it into its technical page."""
        if isinstance(exception, Http404):
            return not_found_page(request, message_of(exception))
        return None
