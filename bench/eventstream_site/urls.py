"""A stream per channel, as in django-eventstream's README, and the bench's publishing view."""

from __future__ import annotations

import json

import django_eventstream
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django_eventstream import send_event


@csrf_exempt
def publish(request: HttpRequest, channel: str) -> HttpResponse:
    """Bench only: ``send_event`` from inside the server process (body: the event's JSON data)."""
    send_event(channel, "e", json.loads(request.body))
    return HttpResponse(status=204)


urlpatterns = [
    path("events/<channel>/", include(django_eventstream.urls)),
    path("publish/<channel>/", publish),
]
