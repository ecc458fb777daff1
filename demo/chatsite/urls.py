from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("htmx/", include("htmx_recipe.urls")),
    # /healthz, /readyz and /metrics
    path("", include("pgsse.urls")),
    path("", include("chat.urls")),
]

handler404 = "chat.not_found.page_not_found"
