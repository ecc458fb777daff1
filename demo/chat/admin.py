"""Rooms and messages in Django's admin. Deleting or editing a message here reaches open
pages live: :mod:`chat.signals` publishes every change, whoever makes it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin

from chat.models import Attachment, Membership, Message, Room

#: Characters of a message's text shown in the admin's list.
SHORT_TEXT = 80

if TYPE_CHECKING:
    AttachmentInlineBase = admin.TabularInline[Attachment, Message]
    MembershipInlineBase = admin.TabularInline[Membership, Room]
    RoomAdminBase = admin.ModelAdmin[Room]
    MessageAdminBase = admin.ModelAdmin[Message]
else:
    AttachmentInlineBase = admin.TabularInline
    MembershipInlineBase = admin.TabularInline
    RoomAdminBase = admin.ModelAdmin
    MessageAdminBase = admin.ModelAdmin


class MembershipInline(MembershipInlineBase):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Room)
class RoomAdmin(RoomAdminBase):
    list_display = ["slug", "name", "private", "owner", "created_at"]
    list_filter = ["private"]
    search_fields = ["slug", "name"]
    raw_id_fields = ["owner"]
    inlines = [MembershipInline]


class AttachmentInline(AttachmentInlineBase):
    """A message's files: a moderator deletes one (its message shows it gone, live), never
    adds or changes one here."""

    model = Attachment
    extra = 0
    fields = readonly_fields = ("name", "content_type", "size", "width", "height", "created_at")

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(MessageAdminBase):
    list_display = ["id", "room", "author_name", "short_text", "created_at", "edited_at"]
    list_filter = ["room"]
    search_fields = ["text", "author_name"]
    raw_id_fields = ["author"]
    readonly_fields = ["created_at", "edited_at", "mentions", "attachments"]
    inlines = [AttachmentInline]
    # Newest first: what a moderator looks for is usually what was just posted.
    ordering = ["-id"]
    list_display_links = ["id", "short_text"]

    @admin.display(description="text")
    def short_text(self, message: Message) -> str:
        text = " ".join(message.text.split())
        return text if len(text) <= SHORT_TEXT else text[: SHORT_TEXT - 1] + "…"
