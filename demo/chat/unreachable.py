"""The page people get while the database cannot be reached (a 503 that says so).

The API and the streams answer such a failure in JSON (chat.errors); a page's view would
otherwise end in the server error page. The page is plain HTML built here: rendering the
chat's templates would look up the session and the user, from the same database.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from chat import conflicts
from chat.errors import DATABASE_RETRY_AFTER
from chat.middleware_modes import SyncAndAsyncMiddleware

logger = logging.getLogger("chat")

PAGE = (
    "<!doctype html><meta charset=utf-8><title>Unavailable · pgsse chat</title>"
    "<h1>Unavailable</h1><p role=alert>The chat cannot reach its database right now; "
    "try again in a few seconds.</p>"
)


class DatabaseUnreachablePageMiddleware(SyncAndAsyncMiddleware):
    """A page's view that could not reach the database: 503, ``Retry-After``, a page."""

    def __call__(self, request: HttpRequest) -> Any:
        # Only process_exception does something; in async mode this passes on the awaitable.
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        if conflicts.conflict_of(exception) is not None:
            return None  # a collision, not an outage: the view's own answer (chat.views)
        logger.warning("Database unreachable: %s", exception, extra={"request": request})
        response = HttpResponse(PAGE, status=503, content_type="text/html; charset=utf-8")
        response["Retry-After"] = str(DATABASE_RETRY_AFTER)
        return response
