"""The page-load position, from Python and from a template."""

from __future__ import annotations

import pytest
from django.template import Context, Template, TemplateSyntaxError

from pgsse import InvalidChannel, InvalidPosition, carry_position, current_position, publish
from pgsse.position import canonical_channels, parse_position

pytestmark = pytest.mark.django_db(transaction=True)  # seqs are given at commit


def test_position_counts_committed_events_per_channel() -> None:
    channels = canonical_channels(["room:a", "user:7"])
    assert parse_position(current_position(channels), channels) == {"room:a": 0, "user:7": 0}
    publish("room:a", "e", 1)
    publish("room:a", "e", 2)
    publish("user:7", "e", 3)
    assert parse_position(current_position(["user:7", "room:a"]), channels) == {
        "room:a": 2,
        "user:7": 1,
    }


def test_template_tag_renders_the_same_position() -> None:
    publish("room:a", "e", 1)
    rendered = Template('{% load pgsse %}{% pgsse_position "room:a" "user:7" %}').render(Context())
    assert rendered == current_position(["room:a", "user:7"])


def test_template_tag_refuses_no_channel_and_invalid_names() -> None:
    with pytest.raises(TemplateSyntaxError):
        Template("{% load pgsse %}{% pgsse_position %}").render(Context())
    with pytest.raises(InvalidChannel):
        Template('{% load pgsse %}{% pgsse_position "bad name" %}').render(Context())


def test_template_tag_takes_lists_of_channels_and_the_function_refuses_none() -> None:
    publish("user:7", "e", 1)
    rendered = Template("{% load pgsse %}{% pgsse_position channels %}").render(
        Context({"channels": ["room:a", "user:7"]})
    )
    assert rendered == current_position(["room:a", "user:7"])
    with pytest.raises(InvalidChannel, match="at least one"):
        current_position([])


def test_a_position_carries_over_to_another_set_of_channels() -> None:
    publish("room:a", "e", 1)
    publish("room:b", "e", 2)
    old = ("room:a", "room:b")
    position = current_position(old)
    publish("room:a", "e", 3)  # after the position: still to come on the new stream
    publish("room:c", "e", 4)
    publish("room:c", "e", 5)
    carried = carry_position(position, old, ["room:c", "room:a"])
    # room:a keeps the seq it had reached, room:c starts from now, room:b is dropped.
    assert parse_position(carried, ("room:a", "room:c")) == {"room:a": 1, "room:c": 2}
    with pytest.raises(InvalidPosition):
        carry_position(position, ["room:a"], ["room:c"])  # not a position of that set
    with pytest.raises(InvalidChannel):
        carry_position(position, old, [])
