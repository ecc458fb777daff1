"""The event log in Django's admin: browse channels and events, redact and purge.

Everything is read-only but for two actions, each confirmed on a page of its own before
it runs: *redact* (``pgsse.redact``: the events keep their seqs and lose their type and
data) and *purge* (``pgsse.purge_channel``: a channel's events deleted, its name never
used again, its open streams closed). An operator answers a deletion request with them,
without writing SQL. They need the ``pgsse.change_event`` and ``pgsse.delete_channel``
permissions (a superuser has both).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from pgsse.forget import purge_channel, redact
from pgsse.models import Channel, Event

if TYPE_CHECKING:
    ChannelAdminBase = admin.ModelAdmin[Channel]
    EventAdminBase = admin.ModelAdmin[Event]
else:
    ChannelAdminBase = admin.ModelAdmin
    EventAdminBase = admin.ModelAdmin

#: Characters of an event's data shown in the list.
SHORT_DATA = 100


class ReadOnly:
    """Nothing is added, changed or deleted through the forms: the log is written by
    ``publish()`` and forgets through the actions only."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _confirmed(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    action: str,
    title: str,
    consequence: str,
) -> HttpResponse | None:
    """None once the operator confirmed; until then, the page that asks."""
    if request.POST.get("confirmed") == "yes":
        return None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "consequence": consequence,
        "objects": list(queryset[:100]),
        "count": queryset.count(),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "action": action,
        "opts": model_admin.model._meta,
        "select_across": request.POST.get("select_across", "0"),
    }
    return TemplateResponse(request, "admin/pgsse/confirm_action.html", context)


class ChannelFilter(admin.SimpleListFilter):
    """Events of one channel (``?channel=<name>``; each channel's page links here)."""

    title = "channel"
    parameter_name = "channel"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, value)] if value else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(channel=value) if value else queryset


@admin.register(Channel)
class ChannelAdmin(ReadOnly, ChannelAdminBase):
    list_display = ("name", "last_seq", "pruned_seq", "purged_at", "events")
    list_filter = (("purged_at", admin.EmptyFieldListFilter),)
    search_fields = ("name",)
    ordering = ("name",)
    show_full_result_count = False
    actions = ("purge",)

    @admin.display(description="events")
    def events(self, channel: Channel) -> str:
        from django.urls import reverse
        from django.utils.html import format_html
        from django.utils.http import urlencode

        url = reverse("admin:pgsse_event_changelist") + "?" + urlencode({"channel": channel.name})
        return format_html('<a href="{}">events</a>', url)

    def has_purge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("pgsse.delete_channel")

    @admin.action(description="Purge the selected channels", permissions=["purge"])
    def purge(self, request: HttpRequest, queryset: QuerySet[Channel]) -> HttpResponse | None:
        asking = _confirmed(
            self,
            request,
            queryset,
            action="purge",
            title="Purge channels",
            consequence=(
                "Every event of these channels is deleted for good, their open streams"
                " end, and their names can never be published to again."
            ),
        )
        if asking is not None:
            return asking
        deleted = 0
        with transaction.atomic():
            for name in queryset.values_list("name", flat=True):
                deleted += purge_channel(name)
        self.message_user(
            request, f"Purged {queryset.count()} channels ({deleted} events).", messages.SUCCESS
        )
        return None


@admin.register(Event)
class EventAdmin(ReadOnly, EventAdminBase):
    list_display = ("channel", "seq", "type", "short_data", "key", "created_at", "redacted_at")
    list_filter = (ChannelFilter, ("redacted_at", admin.EmptyFieldListFilter))
    date_hierarchy = "created_at"
    search_fields = ("=channel", "=key")
    ordering = ("-id",)
    show_full_result_count = False
    actions = ("redact_events",)

    @admin.display(description="data")
    def short_data(self, event: Event) -> str:
        data = event.data
        return data if len(data) <= SHORT_DATA else data[:SHORT_DATA] + "…"

    def has_redact_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("pgsse.change_event")

    @admin.action(description="Redact the selected events", permissions=["redact"])
    def redact_events(self, request: HttpRequest, queryset: QuerySet[Event]) -> HttpResponse | None:
        asking = _confirmed(
            self,
            request,
            queryset,
            action="redact_events",
            title="Redact events",
            consequence=(
                "These events keep their place in their channels and lose their type and"
                " data for good: a replay delivers them as empty frames."
            ),
        )
        if asking is not None:
            return asking
        erased = 0
        by_channel: dict[str, list[int]] = {}
        for channel, seq in queryset.exclude(seq=None).values_list("channel", "seq"):
            if seq is not None:  # staged events are not the log's yet
                by_channel.setdefault(channel, []).append(seq)
        with transaction.atomic():
            for channel, seqs in sorted(by_channel.items()):
                erased += redact(channel, seqs=seqs)
        self.message_user(request, f"Redacted {erased} events.", messages.SUCCESS)
        return None
