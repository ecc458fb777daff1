from __future__ import annotations

from django.urls import path

from htmx_recipe import views

app_name = "htmx_recipe"

urlpatterns = [
    path("", views.board, name="board"),
    path("notes/", views.post_note, name="post_note"),
    path("events/", views.board_events, name="events"),
]
