from __future__ import annotations

import re

import pytest

from pgsse.channels import MAX_CHANNEL_LENGTH, InvalidChannel, pg_channel_name, validate_channel


@pytest.mark.parametrize(
    "name", ["room:lobby", "room:été-2026", "user:42", "Room:Lobby", "🎉", "x" * MAX_CHANNEL_LENGTH]
)
def test_valid_names_map_to_short_lowercase_postgres_identifiers(name: str) -> None:
    assert validate_channel(name) == name
    pg_name = pg_channel_name(name)
    assert re.fullmatch(r"pgsse_[0-9a-f]{32}", pg_name)
    assert len(pg_name.encode()) <= 63
    assert pg_channel_name(name) == pg_name  # deterministic


def test_names_differing_only_in_case_get_different_channels() -> None:
    assert pg_channel_name("room:Lobby") != pg_channel_name("room:lobby")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("x" * (MAX_CHANNEL_LENGTH + 1), "limit"),
        ("room lobby", "whitespace"),
        ("room\nlobby", "whitespace or control"),
        ("room\x00", "control"),
        (42, "string"),
    ],
)
def test_invalid_names_are_refused_with_a_reason(name: object, reason: str) -> None:
    with pytest.raises(InvalidChannel, match=reason):
        validate_channel(name)
