"""A minimal project around pgsse alone, for the package's own end-to-end tests."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import path

from pgsse.views import StreamView


def anyone(request: HttpRequest, channel: str) -> bool:
    return True


def not_secret(request: HttpRequest, channel: str) -> bool:
    return not channel.startswith("secret:")


def channels_from_query(request: HttpRequest) -> list[str]:
    return request.GET.getlist("channel")


urlpatterns = [
    path("events/<str:channel>/", StreamView.as_view(authorize=not_secret)),
    path("multi/", StreamView.as_view(channels=channels_from_query, authorize=anyone)),
    path("private/<str:channel>/", StreamView.as_view()),
]
