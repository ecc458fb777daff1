from __future__ import annotations

from django.apps import AppConfig


class HtmxRecipeConfig(AppConfig):
    """The htmx recipe of docs/htmx.md: HTML fragments rendered by Django, streamed by pgsse."""

    name = "htmx_recipe"
    verbose_name = "htmx recipe"
