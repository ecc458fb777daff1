from __future__ import annotations

import pytest

from pgsse.position import (
    MAX_SEQ,
    InvalidPosition,
    canonical_channels,
    fingerprint,
    format_position,
    parse_position,
)

ONE = canonical_channels(["room:lobby"])
TWO = canonical_channels(["user:7", "room:lobby"])


def test_canonical_channels_are_unique_and_sorted() -> None:
    assert TWO == ("room:lobby", "user:7")
    assert canonical_channels(["b", "a", "b"]) == ("a", "b")


def test_round_trip_one_and_several_channels() -> None:
    assert parse_position(format_position(ONE, {"room:lobby": 42}), ONE) == {"room:lobby": 42}
    text = format_position(TWO, {"room:lobby": 5, "user:7": 0})
    assert text == f"{fingerprint(TWO)}:5.0"
    assert parse_position(text, TWO) == {"room:lobby": 5, "user:7": 0}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("abc", "malformed"),
        ("-1", "malformed"),
        ("12", "malformed"),
        (f"{fingerprint(ONE)}:-1", "malformed"),
        (f"{fingerprint(ONE)}:1.2", "malformed"),
        (f"{fingerprint(ONE)}:" + "9" * 19, "malformed"),  # 19 digits, beyond a bigint
        (f"{fingerprint(ONE)}:" + "1" * 20, "malformed"),
        (f"{fingerprint(ONE)}:1" + "0" * 10_000, "malformed"),
        (f"{fingerprint(TWO)}:1", "channels"),
        (f"{fingerprint(ONE).upper()}:1", "malformed"),
    ],
)
def test_invalid_positions_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidPosition) as raised:
        parse_position(text, ONE)
    assert raised.value.reason == reason


def test_the_largest_bigint_is_a_valid_seq() -> None:
    assert parse_position(f"{fingerprint(ONE)}:{MAX_SEQ}", ONE) == {"room:lobby": MAX_SEQ}
