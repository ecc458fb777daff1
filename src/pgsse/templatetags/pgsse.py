"""``{% pgsse_position "room:lobby" %}``: the page-load position of a stream, in a template.

Render it *before* the part of the page that shows history (template order is render
order), then open the stream with ``?last_event_id=<position>``::

    {% load pgsse %}
    <div data-position="{% pgsse_position "room:lobby" "user:7" %}">...history...</div>
"""

from __future__ import annotations

from django import template

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
