from __future__ import annotations

import pytest

from pgsse import sse


def test_event_has_id_event_and_one_data_line_per_line() -> None:
    frame = sse.encode_event("message_created", "a\nb\r\nc\rd", "3f:1")
    assert frame == b"id: 3f:1\nevent: message_created\ndata: a\ndata: b\ndata: c\ndata: d\n\n"


def test_empty_data_is_one_empty_data_line() -> None:
    assert sse.encode_event("ping", "") == b"event: ping\ndata: \n\n"


def test_leading_space_in_data_survives_the_parser_stripping_one() -> None:
    assert sse.encode_event_body("x", " indented") == b"event: x\ndata:  indented\n\n"


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\x00b"])
def test_event_type_and_id_cannot_inject_fields(bad: str) -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        sse.encode_event_body(bad, "data")
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        sse.encode_id(bad)


def test_retry_and_comments() -> None:
    assert sse.encode_retry(2500) == b"retry: 2500\n\n"
    with pytest.raises(ValueError, match="non-negative"):
        sse.encode_retry(-1)
    assert sse.encode_comment("") == b":\n\n"
    assert sse.encode_comment("two\nlines") == b": two\n: lines\n\n"
