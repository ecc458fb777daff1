"""Rooms and messages in Django's admin. Deleting or editing a message here reaches open
pages live: :mod:`chat.signals` publishes every change, whoever makes it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin

from chat.models import Attachment, Membership, Message, Profile, Room

#: Characters of a message's text shown in the admin's list.
SHORT_TEXT = 80

if TYPE_CHECKING:
    AttachmentAdminBase = admin.ModelAdmin[Attachment]
    MembershipInlineBase = admin.TabularInline[Membership, Room]
    RoomAdminBase = admin.ModelAdmin[Room]
    MessageAdminBase = admin.ModelAdmin[Message]
    ProfileAdminBase = admin.ModelAdmin[Profile]
else:
    AttachmentAdminBase = admin.ModelAdmin
    MembershipInlineBase = admin.TabularInline
    RoomAdminBase = admin.ModelAdmin
    MessageAdminBase = admin.ModelAdmin
    ProfileAdminBase = admin.ModelAdmin


class MembershipInline(MembershipInlineBase):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Room)
class RoomAdmin(RoomAdminBase):
    list_display = ["slug", "name", "private", "direct", "owner", "created_at"]
    list_filter = ["private", "direct"]
    search_fields = ["slug", "name", "topic"]
    readonly_fields = ["direct", "direct_key"]
    raw_id_fields = ["owner"]
    inlines = [MembershipInline]


@admin.register(Message)
class MessageAdmin(MessageAdminBase):
    list_display = ["id", "room", "author_name", "short_text", "created_at", "edited_at"]
    list_filter = ["room"]
    search_fields = ["text", "author_name"]
    raw_id_fields = ["author"]
    readonly_fields = ["created_at", "edited_at", "mentions", "attachments"]
    # Newest first: what a moderator looks for is usually what was just posted.
    ordering = ["-id"]
    list_display_links = ["id", "short_text"]

    @admin.display(description="text")
    def short_text(self, message: Message) -> str:
        text = " ".join(message.text.split())
        return text if len(text) <= SHORT_TEXT else text[: SHORT_TEXT - 1] + "…"


@admin.register(Profile)
class ProfileAdmin(ProfileAdminBase):
    """Display names; a change here reaches open pages live (chat.profiles)."""

    list_display = ["user", "display_name"]
    search_fields = ["user__username", "display_name"]
    raw_id_fields = ["user"]


@admin.register(Attachment)
class AttachmentAdmin(AttachmentAdminBase):
    """Files posted with messages. A moderator deletes one (its message then shows it gone,
    live, on every page: chat.attachments), never adds or changes one here."""

    list_display = ["name", "content_type", "size", "message", "created_at"]
    list_filter = ["content_type"]
    search_fields = ["name"]
    ordering = ["-created_at"]
    fields = readonly_fields = ("name", "content_type", "size", "width", "height", "message")

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False
