from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.db import transaction
from django.urls import path, re_path

from chat import (
    account_pages,
    api,
    conversation_api,
    conversation_pages,
    downloads,
    errors,
    message_api,
    people,
    search_views,
    streams,
    views,
)

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    # One transaction: the session's deletion and the request to end the user's streams
    # (chat.revocation) commit together, so no stream's reconnect finds the session alive.
    path("accounts/logout/", transaction.atomic(auth_views.LogoutView.as_view()), name="logout"),
    # Profiles and passwords (chat.account_pages).
    path("accounts/profile/", account_pages.profile, name="profile"),
    path(
        "accounts/password_reset/",
        account_pages.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "accounts/password_reset/done/",
        account_pages.password_reset_done,
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        account_pages.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        account_pages.password_reset_complete,
        name="password_reset_complete",
    ),
    path(
        "accounts/password_change/",
        account_pages.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        account_pages.password_change_done,
        name="password_change_done",
    ),
    path("events/me/", streams.own_events, name="own_events"),
    path("search/", search_views.search_page, name="search"),
    path("rooms/new/", views.create, name="create"),
    # Direct conversations and room settings (chat.conversation_pages).
    path("direct/", conversation_pages.start_direct, name="start_direct"),
    path("rooms/<slug:slug>/settings/", conversation_pages.settings_page, name="room_settings"),
    path("rooms/<slug:slug>/", views.room, name="room"),
    path("rooms/<slug:slug>/join/", views.join, name="join"),
    path("rooms/<slug:slug>/leave/", views.leave, name="leave"),
    path("rooms/<slug:slug>/invite/", views.invite, name="invite"),
    path("rooms/<slug:slug>/remove/", views.remove, name="remove"),
    path("rooms/<slug:slug>/events/", streams.room_events, name="room_events"),
    # The page's form post; the same endpoint as the API's.
    path("rooms/<slug:slug>/messages/", api.messages, name="post_message"),
    path("api/rooms/", api.rooms, name="api_rooms"),
    path("api/unread/", api.unread_counts, name="api_unread"),
    path("api/rooms/<slug:slug>/messages/", api.messages, name="api_messages"),
    path("api/rooms/<slug:slug>/messages/<int:message_id>/", api.message, name="api_message"),
    # Threads, reactions, mentions' autocomplete, search (chat.message_api, chat.people,
    # chat.search_views).
    path(
        "api/rooms/<slug:slug>/messages/<int:message_id>/thread/",
        message_api.thread,
        name="api_thread",
    ),
    path(
        "api/rooms/<slug:slug>/messages/<int:message_id>/reactions/",
        message_api.add_reaction,
        name="api_reactions",
    ),
    path(
        "api/rooms/<slug:slug>/messages/<int:message_id>/reactions/<str:emoji>/",
        message_api.remove_reaction,
        name="api_reaction",
    ),
    path("api/rooms/<slug:slug>/people/", people.people, name="api_people"),
    path("api/search/", search_views.api_search, name="api_search"),
    path("api/rooms/<slug:slug>/presence/", api.heartbeat, name="api_presence"),
    path("api/rooms/<slug:slug>/typing/", api.typing, name="api_typing"),
    path("api/rooms/<slug:slug>/read/", api.read, name="api_read"),
    path("api/rooms/<slug:slug>/members/<str:username>/", api.member, name="api_member"),
    # Conversations (chat.conversation_api).
    path("api/rooms/<slug:slug>/", conversation_api.room, name="api_room"),
    path("api/rooms/<slug:slug>/members/", conversation_api.members, name="api_members"),
    path("api/direct/", conversation_api.direct, name="api_direct"),
    path("api/me/", conversation_api.me, name="api_me"),
    path("api/follow/", conversation_api.follow, name="api_follow"),
    # Attachments, by their random id (stable whatever the room's slug becomes).
    path("api/attachments/<uuid:attachment_id>/", downloads.original, name="api_attachment"),
    path(
        "api/attachments/<uuid:attachment_id>/preview/",
        downloads.preview,
        name="api_attachment_preview",
    ),
    # Anything else under /api/: a JSON 404, under DEBUG too.
    re_path(r"^api/(?P<path>.*)$", errors.not_found, name="api_not_found"),
]
