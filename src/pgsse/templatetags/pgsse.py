"""pgsse's template tags: ``{% pgsse_position %}`` and ``{% pgsse_script %}``.

``{% pgsse_position "room:lobby" %}`` renders the page-load position of a stream. Render
it *before* the part of the page that shows history (template order is render order),
then open the stream with ``?last_event_id=<position>``::

    {% load pgsse %}
    <div data-position="{% pgsse_position "room:lobby" "user:7" %}">...history...</div>

``{% pgsse_script %}`` renders the ``<script>`` tag of ``pgsse.js`` (docs/javascript.md).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django import template
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import SafeString

from pgsse.resume import current_position

register = template.Library()


@register.simple_tag
def pgsse_position(*channels: str | list[str] | tuple[str, ...]) -> str:
    """The position of a stream over ``channels`` that has seen everything committed so far.

    Channels are names, or lists of names (``{% pgsse_position room.channels %}``).
    """
    names = [
        name for item in channels for name in (item if isinstance(item, list | tuple) else [item])
    ]
    if not names:
        raise template.TemplateSyntaxError("pgsse_position needs at least one channel name")
    return current_position(names)


@register.simple_tag(takes_context=True)
def pgsse_script(context: template.Context) -> SafeString:
    """``<script src=".../pgsse/pgsse.js">`` through static files, with the page's CSP
    nonce when it has one."""
    src = static("pgsse/pgsse.js")
    nonce = _csp_nonce(context)
    if nonce:
        return format_html('<script src="{}" nonce="{}"></script>', src, nonce)
    return format_html('<script src="{}"></script>', src)


def _csp_nonce(context: template.Context) -> str:
    """The request's CSP nonce, or ``""``. Looked for where each implementation puts it:

    - Django 6's ``csp()`` context processor: the ``csp_nonce`` variable;
    - django-csp's middleware: ``request.csp_nonce``;
    - Django 6's middleware without the context processor: ``get_nonce(request)``.

    Django's nonce is lazy and false until first rendered (its middleware then leaves it
    out of the header): test it against None and render it, never test its truth.
    """
    request = context.get("request")
    candidates = [context.get("csp_nonce"), getattr(request, "csp_nonce", None)]
    if request is not None:
        candidates.append(_django_nonce(request))
    for nonce in candidates:
        if nonce is not None and str(nonce):
            return str(nonce)
    return ""


def _django_nonce(request: Any) -> Any:
    try:  # Django 6 and later; Django 5.2 has no CSP support of its own
        csp = import_module("django.middleware.csp")
    except ImportError:
        return None
    get_nonce = getattr(csp, "get_nonce", None)
    return get_nonce(request) if get_nonce is not None else None
