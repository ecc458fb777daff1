"""A project's own authentication middleware, as a test double of a real one: it sets
``request.user`` from an ``X-Test-User`` header (think of an API token scheme)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse


class HeaderUserMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = request.headers.get("X-Test-User")
        if name:
            user = get_user_model().objects.filter(username=name).first()
            if user is not None:
                request.user = user
        return self.get_response(request)
