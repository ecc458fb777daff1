"""A URLconf with one StreamView that has no authorize hook (system check tests)."""

from __future__ import annotations

from django.urls import include, path

from pgsse.views import StreamView
from tests.urls import anyone

nested = [path("<str:channel>/", StreamView.as_view())]

urlpatterns = [
    path("feeds/", include(nested)),
    path("open/<str:channel>/", StreamView.as_view(authorize=anyone)),
]
