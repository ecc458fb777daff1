"""A minimal project around pgsse alone, for the package's own end-to-end tests."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from pgsse.authorization import allow_authenticated
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


urlpatterns = [
    path("events/<str:channel>/", StreamView.as_view(authorize=not_secret)),
    path("multi/", StreamView.as_view(channels=channels_from_query, authorize=anyone)),
    path("private/<str:channel>/", StreamView.as_view(authorize=allow_authenticated)),
    path("json/", JsonStreamView.as_view(channels=known_rooms_only, authorize=anyone)),
]
