from __future__ import annotations

from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("name/", views.set_name, name="set_name"),
    path("rooms/<slug:slug>/", views.room, name="room"),
    path("rooms/<slug:slug>/messages/", views.post_message, name="post_message"),
    path("rooms/<slug:slug>/events/", views.room_events, name="room_events"),
]
