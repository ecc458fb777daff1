"""A minimal project around pgsse alone, for the package's own end-to-end tests."""

from __future__ import annotations

from dataclasses import asdict

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from pgsse.hub import current_hub
from pgsse.views import StreamView


def anyone(request: HttpRequest, channel: str) -> bool:
    return True


def not_secret(request: HttpRequest, channel: str) -> bool:
    return not channel.startswith("secret:")


def channels_from_query(request: HttpRequest) -> list[str]:
    return request.GET.getlist("channel")


def known_rooms_only(request: HttpRequest) -> list[str]:
    room = request.GET.get("room", "")
    if room == "closed":
        raise PermissionDenied("Room 'closed' is closed.")
    if room != "open":
        raise Http404(f"There is no room {room!r}.")
    return ["room:open"]


class JsonStreamView(StreamView):
    """A project answering refusals in its API's JSON format."""

    def error_response(
        self, request: HttpRequest, status: int, message: str, headers: dict[str, str]
    ) -> HttpResponse:
        return JsonResponse({"error": message}, status=status, headers=headers)


async def hub_stats(request: HttpRequest) -> JsonResponse:
    """This process's hub counters (``{}`` before a stream started it): the benchmark reads
    its log reads around a reconnect storm. A test project's view, never the package's."""
    hub = current_hub()  # an async view runs on the server's loop, where the hub lives
    return JsonResponse(asdict(hub.stats()) if hub is not None else {})


urlpatterns = [
    path("stats/", hub_stats),
    path("events/<str:channel>/", StreamView.as_view(authorize=not_secret)),
    path("multi/", StreamView.as_view(channels=channels_from_query, authorize=anyone)),
    path("private/<str:channel>/", StreamView.as_view()),
    path("json/", JsonStreamView.as_view(channels=known_rooms_only, authorize=anyone)),
]
