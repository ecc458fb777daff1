"""Who makes a request: bearer tokens, the session with its CSRF check, and log-in lockouts.

:class:`BearerTokenMiddleware` sets ``request.user`` from ``Authorization: Bearer <token>``
for every request (API, presence, streams, pages), so every view, pgsse's per-user stream
cap included, sees the token's user as it sees a session's. Such requests are exempt from
CSRF (a browser never adds that header cross-site by itself); session requests are not.
A token that is not valid is answered 401 at once, in the API's JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.contrib.auth.models import User
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render

from chat.errors import ApiError, database_unavailable, json_error, not_authenticated
from chat.models import ApiToken

BEARER = "bearer"


def _bearer_token(request: HttpRequest) -> str | None:
    """The token of a ``Bearer`` Authorization header; None without one ('' if empty)."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != BEARER:
        return None
    return token.strip()


#: Where the chat's tokens are meant for: its API and its streams. Elsewhere an
#: ``Authorization`` header belongs to someone else (pgsse's /metrics token, a proxy).
TOKEN_PATHS = ("/api/", "/rooms/", "/events/")


def _token_user(request: HttpRequest) -> HttpResponse | None:
    """Set ``request.user`` from the bearer token; the refusal if the token is bad."""
    if not request.path_info.startswith(TOKEN_PATHS):
        return None
    token = _bearer_token(request)
    if token is None:
        return None
    try:
        user = ApiToken.user_for(token) if token else None
    except (OperationalError, InterfaceError):
        return database_unavailable()
    if user is None:
        return json_error(401, "This token is not valid.", WWW_Authenticate="Bearer")
    request.user = user  # type: ignore[assignment]

    async def auser() -> Any:
        return user

    request.auser = auser
    request.chat_token_user = True  # type: ignore[attr-defined]
    request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
    return None


class BearerTokenMiddleware:
    """Authenticate ``Authorization: Bearer <token>`` requests (sync and async)."""

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
        return _token_user(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if "Authorization" in request.headers:
            refusal = await sync_to_async(_token_user)(request)
            if refusal is not None:
                return refusal
        response: Awaitable[HttpResponse] = self.get_response(request)
        return await response


def uses_token(request: HttpRequest) -> bool:
    return bool(getattr(request, "chat_token_user", False))


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        raise ApiError(
            403, f"CSRF check failed ({reason}): send the csrftoken cookie's value in X-CSRFToken."
        )


def authenticate(request: HttpRequest) -> User:
    """The user making a write: by bearer token, or by session with a valid CSRF token."""
    if "Authorization" in request.headers and not uses_token(request):
        raise not_authenticated("Use 'Authorization: Bearer <token>'.")
    if not request.user.is_authenticated:
        raise not_authenticated()
    if not uses_token(request):
        check = _CsrfCheck(lambda request: HttpResponse())
        check.process_request(request)
        check.process_view(request, lambda request: HttpResponse(), (), {})
    assert isinstance(request.user, User)
    return request.user


def reader(request: HttpRequest) -> Any:
    """The user of a read: the bearer token's or the session's (maybe anonymous)."""
    if "Authorization" in request.headers and not uses_token(request):
        raise not_authenticated("Use 'Authorization: Bearer <token>'.")
    return request.user


#: What django-axes records of the username a failed log-in named: no longer than a
#: username can be (a longer one names nobody), so that axes' 255-character column
#: never refuses the record with a database error.
RECORDED_USERNAME_LENGTH = User._meta.get_field("username").max_length or 150


def attempted_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The username of a log-in attempt, as django-axes counts and records it
    (``AXES_USERNAME_CALLABLE``): the form's, cut to the longest a username can be."""
    username = credentials.get("username") if credentials else request.POST.get("username")
    if not isinstance(username, str):
        return None
    return username[:RECORDED_USERNAME_LENGTH]


def lockout_response(request: HttpRequest, *args: Any) -> HttpResponse:
    """django-axes' answer to a locked-out log-in: the form again, 429, with Retry-After,
    saying one thing: the lockout (never also "enter a correct username and password").

    The form is not bound to what was posted: validating it again would authenticate
    again, which axes would count as one more failure. The username stays filled in.

    (Called by axes with ``(request, credentials)`` or ``(request, response, credentials)``
    depending on its sync or async path; neither is needed here.)
    """
    from axes.helpers import get_cool_off

    from chat.views import blank_login_form

    cool_off = get_cool_off(request) or timedelta(minutes=5)
    seconds = max(1, int(cool_off.total_seconds()))
    minutes = max(1, round(seconds / 60))
    response = render(
        request,
        "registration/login.html",
        {
            "form": blank_login_form(request),
            "lockout": f"Too many failed log-ins for this username from your address: "
            f"try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            "next": request.POST.get("next", ""),
        },
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response
