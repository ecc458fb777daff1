"""The notification payload: what the append side writes, the hub reads back exactly."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pgsse import log, publish
from pgsse.log import (
    MAX_EVENT_TYPE_LENGTH,
    MAX_SEQ,
    NOTIFY_PAYLOAD_LIMIT,
    PAYLOAD_HEAD_MAX,
    SEQ_DIGITS,
    UNKNOWN_SEQ,
    notify_tail,
    parse_payload,
    wake_payload,
)
from pgsse.publish import MAX_EVENT_TYPE_LENGTH as PUBLISH_MAX_EVENT_TYPE_LENGTH
from pgsse.publish import InvalidEvent


def test_seq_width_is_that_of_a_postgresql_bigint() -> None:
    assert MAX_SEQ == 9_223_372_036_854_775_807
    assert SEQ_DIGITS == 19


@pytest.mark.parametrize(
    ("seq", "accepted"),
    [
        ("1", True),
        (str(MAX_SEQ), True),
        (str(MAX_SEQ + 1), False),  # 19 digits, but beyond a bigint
        ("9" * 19, False),
        ("1" + "0" * 19, False),  # 20 digits
        ("0", True),  # a wake-up: new events, seqs unknown (never with an event inline)
        ("01", False),
    ],
)
def test_payload_seq_must_be_a_bigint(seq: str, accepted: bool) -> None:
    payload = f"{seq}\troom:a"
    if accepted:
        assert parse_payload(payload) == ("room:a", int(seq), None, None)
    else:
        with pytest.raises(ValueError, match="not a pgsse"):
            parse_payload(payload)


def test_a_wake_up_never_carries_an_event() -> None:
    assert parse_payload(wake_payload("room:a")) == ("room:a", UNKNOWN_SEQ, None, None)
    with pytest.raises(ValueError, match="a pgsse wake-up carries no event"):
        parse_payload("0\troom:a\tt\t{}")


def test_the_inline_limit_leaves_room_for_the_longest_head() -> None:
    """Inline iff the payload fits with the longest head (a 19-digit seq and a bigint
    stamp with its sign) in front; a reference otherwise."""
    longest_head = f"{MAX_SEQ}@{-(2**63)}"
    assert len(longest_head) == PAYLOAD_HEAD_MAX
    overhead = len("\troom:a\te\t")
    fits = "x" * (NOTIFY_PAYLOAD_LIMIT - PAYLOAD_HEAD_MAX - overhead - 1)
    tail = notify_tail("room:a", "e", fits)
    assert tail == f"\troom:a\te\t{fits}"
    assert len((longest_head + tail).encode()) == NOTIFY_PAYLOAD_LIMIT - 1
    assert parse_payload(longest_head + tail) == ("room:a", MAX_SEQ, ("e", fits), -(2**63) / 1e6)
    assert notify_tail("room:a", "e", fits + "x") == "\troom:a"
    # Counted in bytes, not characters: 3 bytes a euro sign.
    room = NOTIFY_PAYLOAD_LIMIT - PAYLOAD_HEAD_MAX - overhead - 1
    euros = "\u20ac" * (room // 3)
    assert notify_tail("room:a", "e", euros) == f"\troom:a\te\t{euros}"
    assert notify_tail("room:a", "e", euros + "\u20ac") == "\troom:a"


@pytest.mark.parametrize(
    ("head", "created_at"),
    [
        ("7", None),  # written before payloads carried a stamp
        ("7@0", 0.0),
        ("7@1764547200123456", 1764547200.123456),
        (f"7@{MAX_SEQ}", MAX_SEQ / 1e6),
        (f"7@{-(2**63)}", -(2**63) / 1e6),
    ],
)
def test_payload_stamp_is_optional_and_in_microseconds(head: str, created_at: float | None) -> None:
    assert parse_payload(f"{head}\troom:a") == ("room:a", 7, None, created_at)
    assert parse_payload(f"{head}\troom:a\te\t1") == ("room:a", 7, ("e", "1"), created_at)


@pytest.mark.parametrize(
    "head",
    ["7@", "7@01", "7@-0", "7@+1", "7@1.5", "7@1@2", "@1", f"7@{MAX_SEQ + 1}", f"7@{-(2**63) - 1}"],
)
def test_payload_stamp_is_parsed_strictly(head: str) -> None:
    with pytest.raises(ValueError, match="not a pgsse"):
        parse_payload(f"{head}\troom:a")


def test_event_type_length_is_one_setting_for_publish_and_the_hub(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert PUBLISH_MAX_EVENT_TYPE_LENGTH == MAX_EVENT_TYPE_LENGTH
    monkeypatch.setattr(log, "MAX_EVENT_TYPE_LENGTH", 5)
    with pytest.raises(InvalidEvent, match="longer than 5"):
        publish("room:a", "sixsix", 1)
    with pytest.raises(ValueError, match="not a pgsse event type"):
        parse_payload("1\troom:a\tsixsix\t1")
    assert parse_payload("1\troom:a\tfive5\t1") == ("room:a", 1, ("five5", "1"), None)


@pytest.mark.parametrize(
    "payload",
    [
        "1\troom:a\t\t1",  # empty type
        "1\troom:a\t" + "x" * (MAX_EVENT_TYPE_LENGTH + 1) + "\t1",
        "1\troom:a\tev\rx\t1",
        "1\troom:a\tev\nx\t1",
        "1\troom:a\tev\x00x\t1",
        "1\troom:a\treset\t1",  # streams send it themselves
    ],
)
def test_hub_refuses_event_types_publish_refuses(payload: str) -> None:
    with pytest.raises(ValueError, match="not a pgsse event type"):
        parse_payload(payload)


TYPES = st.text(st.characters(codec="utf-8"), max_size=MAX_EVENT_TYPE_LENGTH + 2)


@given(event_type=TYPES, data=st.text(st.characters(codec="utf-8"), max_size=50))
@example(event_type="a\tb", data="1")
@example(event_type="x" * (MAX_EVENT_TYPE_LENGTH + 1), data="1")
@example(event_type="reset", data="1")
@example(event_type="a", data="x\ty")
def test_payload_round_trips_or_the_type_is_refused_at_both_ends(
    event_type: str, data: str
) -> None:
    """What the append side writes inline, the hub reads back as it was; nothing else passes.

    A tab in the type would end it early in the tab-separated payload, so publishing
    refuses it, as it refuses everything the hub would refuse to read.
    """
    refused_by_publish = log.event_type_problem(event_type) is not None
    try:
        tail = notify_tail("room:a", event_type, data)
    except ValueError:
        assert refused_by_publish
        return
    assert not refused_by_publish
    assert parse_payload(f"{MAX_SEQ}@1{tail}") == ("room:a", MAX_SEQ, (event_type, data), 1e-6)
