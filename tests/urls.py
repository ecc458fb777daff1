"""A minimal project around pgsse alone, for the package's own end-to-end tests."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import engines
from django.urls import include, path

from pgsse.authorization import allow_authenticated
from pgsse.hub import current_hub
from pgsse.views import StreamView
from tests.gate import gated


def anyone(request: HttpRequest, channel: str) -> bool:
    return True


def not_secret(request: HttpRequest, channel: str) -> bool:
    return not channel.startswith("secret:")


def channels_from_query(request: HttpRequest) -> list[str]:
    return request.GET.getlist("channel")


def members_only(request: HttpRequest, channel: str) -> bool:
    """Members of the group named like the channel: access that can be taken away."""
    user = request.user
    return bool(user.is_authenticated and user.groups.filter(name=channel).exists())


def named_after_user(request: HttpRequest, channel: str) -> bool:
    """``user:<username>`` for the user some authentication middleware set."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and channel == f"user:{user}")


def in_transaction(request: HttpRequest) -> JsonResponse:
    """Whether a sync view runs in a transaction: ``ATOMIC_REQUESTS`` at work."""
    return JsonResponse({"in_transaction": connection.in_atomic_block})


async def hub_stats(request: HttpRequest) -> JsonResponse:
    """This process's hub counters (``{}`` before a stream started it): the benchmark reads
    its log reads around a reconnect storm. A test project's view, never the package's."""
    hub = current_hub()  # an async view runs on the server's loop, where the hub lives
    return JsonResponse(asdict(hub.stats()) if hub is not None else {})


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


# A page using pgsse.js: the stream's URL in ?stream=, the page-load position of the
# channels in ?position= (any set: another one than the stream's gets a reset). Its last
# script carries no nonce: under a Content-Security-Policy it must not run.
PGSSE_JS_PAGE = """{% load pgsse %}<!doctype html>
<title>pgsse.js</title>
<main id="stream" data-url="{{ url }}"
  data-position="{% if channels %}{% pgsse_position channels %}{% endif %}"></main>
{% pgsse_script %}
<script>window.scriptWithoutNonceRan = true;</script>
"""


def pgsse_js_page(request: HttpRequest) -> HttpResponse:
    page = engines["django"].from_string(PGSSE_JS_PAGE)
    context = {"url": request.GET.get("stream", ""), "channels": request.GET.getlist("position")}
    return HttpResponse(page.render(context, request))


def with_csp_nonce(view: Callable[[HttpRequest], HttpResponse]) -> Callable[..., HttpResponse]:
    """A nonce where django-csp puts it (``request.csp_nonce``), and a policy that runs
    only the scripts carrying it."""

    def nonced(request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = view(request)
        response["Content-Security-Policy"] = f"script-src 'nonce-{nonce}'"
        return response

    return nonced


urlpatterns = [
    path("stats/", hub_stats),
    path("in-transaction/", in_transaction),
    path("member/<str:channel>/", StreamView.as_view(authorize=members_only)),
    path("named/<str:channel>/", StreamView.as_view(authorize=named_after_user)),
    path("news/", StreamView.as_view(channels=["news", "alerts"], authorize=anyone)),
    path("events/<str:channel>/", StreamView.as_view(authorize=not_secret)),
    path("multi/", StreamView.as_view(channels=channels_from_query, authorize=anyone)),
    path("private/<str:channel>/", StreamView.as_view(authorize=allow_authenticated)),
    path("json/", JsonStreamView.as_view(channels=known_rooms_only, authorize=anyone)),
    path("gated/<str:gate>/<str:channel>/", gated(StreamView.as_view(authorize=not_secret))),
    path("pgsse-js/", pgsse_js_page),
    path("pgsse-js/csp/", with_csp_nonce(pgsse_js_page)),
    path("", include("pgsse.urls")),
]
