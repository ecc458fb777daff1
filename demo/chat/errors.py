"""The API's errors: always JSON, ``{"error": "<what was wrong and what is accepted>"}``.

:func:`api_view` turns whatever goes wrong in an API view into such an answer: the
chat's own refusals (:class:`ApiError`), a rate limit (429 with ``Retry-After``), a body
over Django's size limit (413), a multipart body that cannot be parsed (no boundary, say)
and any other request Django calls suspicious (400), a transaction that collided with
others once retried (503 "busy" with ``Retry-After``, see :mod:`chat.conflicts`), the
database being unreachable (503 with ``Retry-After``) and, last, a bug (500, logged).
Under ``DEBUG`` too: an API client never gets an HTML page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt

from chat import conflicts
from chat.conflicts import retrying
from chat.ratelimit import RateLimited

logger = logging.getLogger("django.request")

#: Seconds a client should wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER = 5


class ApiError(Exception):
    def __init__(self, status: int, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


def json_error(status: int, message: str, **headers: str) -> JsonResponse:
    """``headers`` by keyword: ``Retry_After="3"`` becomes ``Retry-After: 3``."""
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


LOG_IN = "Log in, or send 'Authorization: Bearer <token>'."


def not_authenticated(message: str = LOG_IN) -> ApiError:
    return ApiError(401, message, WWW_Authenticate="Bearer")


def database_unavailable() -> JsonResponse:
    return json_error(
        503,
        "The database is unreachable; try again shortly.",
        Retry_After=str(DATABASE_RETRY_AFTER),
    )


def error_for_exception(request: HttpRequest, exc: Exception) -> JsonResponse:
    """The JSON answer for an exception raised while handling an API request."""
    if isinstance(exc, ApiError):
        return json_error(exc.status, str(exc), **exc.headers)
    if isinstance(exc, RateLimited):
        return json_error(429, str(exc), Retry_After=str(exc.retry_after))
    if isinstance(exc, RequestDataTooBig):
        return json_error(413, "The body is too large; a message is at most 4000 characters.")
    if isinstance(exc, SuspiciousOperation):
        return json_error(400, f"Bad request: {exc}")
    if isinstance(exc, MultiPartParserError):  # Django's own handler answers 400 too
        return json_error(
            400,
            f"The multipart body cannot be read ({exc}); send JSON (application/json) or "
            "a form with its boundary.",
        )
    collision = conflicts.conflict_of(exc)
    if collision is not None:
        logger.warning("Busy: %s", exc, extra={"request": request})
        message = conflicts.busy_message(collision)
        return json_error(503, message, Retry_After=str(conflicts.RETRY_AFTER))
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("Database unreachable: %s", exc, extra={"request": request})
        return database_unavailable()
    if isinstance(exc, DatabaseError):
        logger.error("Database error", exc_info=exc, extra={"request": request})
        return json_error(500, "The server failed to store or read this; it has been logged.")
    logger.error("API error", exc_info=exc, extra={"request": request})
    return json_error(500, "The server failed on this request; it has been logged.")


# Any response: a download streams (chat.downloads).
View = Callable[..., HttpResponseBase]


def api_view(methods: list[str]) -> Callable[[View], View]:
    """JSON errors for everything, methods checked, CSRF checked only for session writes
    (by :func:`chat.auth.authenticate`: bearer-token requests carry no cookie to forge),
    and a transaction that collided with another run again (:mod:`chat.conflicts`)."""

    def decorate(view: View) -> View:
        run = retrying(view)

        @csrf_exempt
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                response = json_error(405, f"Use {' or '.join(methods)} here.")
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return run(request, *args, **kwargs)
            except Exception as exc:  # every failure answers JSON, see the module's doc
                return error_for_exception(request, exc)

        return wrapped

    return decorate


@csrf_exempt
def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any other URL under /api/: a JSON 404 (Django's would be an HTML page)."""
    hint = ""
    if not request.path.endswith("/"):
        try:
            if resolve(request.path + "/").url_name != "api_not_found":
                hint = " (add the trailing slash)"
        except Resolver404:
            pass
    return json_error(
        404,
        f"There is no API endpoint {request.path!r}{hint}; see docs/chat.md for the endpoints.",
    )
