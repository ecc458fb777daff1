"""pgsse's SSE encoder read back by an independent parser written from the WHATWG spec."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pgsse import sse
from tests.sse_parser import Event, EventStreamParser, parse

FORBIDDEN = ("\r", "\n", "\x00")

# Pieces that trip naive encoders and parsers: every line ending, lines that look like
# fields or comments once split, leading spaces (the parser strips one), BOMs, NUL.
TRICKY = st.sampled_from(
    [
        "\r",
        "\n",
        "\r\n",
        "\n\r",
        "\r\r",
        " ",
        "  ",
        ":",
        ": x",
        "data:",
        "id: 7",
        "event: x",
        "retry: 1",
        "\ufeff",
        "\x00",
        "é",
        "雪",
        "😀",
        "\u2028",
        "\x85",
        "\t",
        "a",
        "\\",
        '"',
    ]
)
DATA = st.one_of(st.text(), st.lists(st.one_of(TRICKY, st.text(max_size=5))).map("".join))
SINGLE_LINE = st.text().filter(lambda value: not any(char in value for char in FORBIDDEN))
FIELD_VALUE = st.one_of(SINGLE_LINE, st.lists(TRICKY).map("".join)).map(
    lambda value: value.replace("\r", "").replace("\n", "").replace("\x00", "")
)


@st.composite
def encoded_events(draw: st.DrawFn) -> tuple[str, str, str | None]:
    event_type = draw(FIELD_VALUE)
    data = draw(DATA)
    event_id = draw(st.none() | FIELD_VALUE)
    return event_type, data, event_id


def as_received(data: str) -> str:
    """SSE has one line break, LF: a client rebuilds CR and CRLF in data as LF (WHATWG 9.2.6)."""
    return re.sub(r"\r\n|\r", "\n", data)


def split_at(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(stream) + 1) for cut in cuts})
    bounds = [0, *points, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


@given(encoded_events())
@example(("message_created", "a\r\nb\rc\nd", "3f9a0c1e:42"))
@example(("", "", None))
@example((" spaced", " \n\n :not a comment\r\r", ""))
def test_one_event_round_trips(event: tuple[str, str, str | None]) -> None:
    event_type, data, event_id = event
    events, parser = parse(sse.encode_event(event_type, data, event_id))
    assert events == [Event(event_type or "message", as_received(data), event_id or "")]
    assert parser.last_event_id == (event_id or "")


@given(
    st.lists(st.one_of(encoded_events(), st.tuples(st.just("comment"), st.text())), max_size=8),
    st.integers(0, 10**9),
)
def test_a_stream_round_trips_with_comments_retry_and_persistent_ids(
    items: list[tuple[str, str, str | None] | tuple[str, str]], retry: int
) -> None:
    stream = sse.encode_retry(retry)
    expected: list[Event] = []
    last_id = ""
    for item in items:
        if len(item) == 2:
            stream += sse.encode_comment(item[1])
            continue
        event_type, data, event_id = item
        stream += sse.encode_event(event_type, data, event_id)
        if event_id is not None:
            last_id = event_id  # an id persists until another replaces it
        expected.append(Event(event_type or "message", as_received(data), last_id))
    events, parser = parse(stream)
    assert events == expected
    assert parser.retry == retry
    assert parser.last_event_id == last_id


@given(
    st.lists(encoded_events(), min_size=1, max_size=5),
    st.lists(st.integers(min_value=0), max_size=30),
    st.booleans(),
)
def test_the_same_stream_split_anywhere_parses_the_same(
    items: list[tuple[str, str, str | None]], cuts: list[int], with_bom: bool
) -> None:
    stream = (b"\xef\xbb\xbf" if with_bom else b"") + b"".join(
        sse.encode_event(*item) for item in items
    )
    whole, _ = parse(stream)
    assert len(whole) == len(items)
    chunked, _ = parse(split_at(stream, cuts))
    byte_by_byte, _ = parse([stream[i : i + 1] for i in range(len(stream))])
    assert chunked == whole
    assert byte_by_byte == whole


@given(
    st.lists(FIELD_VALUE, min_size=1, max_size=4),
    st.lists(st.sampled_from(["\r", "\n", "\r\n"]), min_size=4, max_size=4),
)
def test_the_parser_accepts_every_line_ending_and_a_chunk_ending_between_cr_and_lf(
    lines: list[str], ends: list[str]
) -> None:
    stream = "".join(f"data: {line}{ends[i]}" for i, line in enumerate(lines))
    # The blank line that dispatches; after a lone CR, a LF would only complete a CRLF.
    stream += "\r" if ends[len(lines) - 1] == "\r" else ends[-1]
    raw = stream.encode()
    expected = [Event("message", "\n".join(lines), "")]
    assert parse(raw)[0] == expected
    for cut in range(len(raw) + 1):
        assert parse([raw[:cut], raw[cut:]])[0] == expected


@given(st.text(), st.sampled_from(FORBIDDEN), st.text())
def test_event_type_and_id_with_cr_lf_or_nul_are_refused(
    before: str, forbidden: str, after: str
) -> None:
    value = before + forbidden + after
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        sse.encode_event_body(value, "data")
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        sse.encode_id(value)
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        sse.encode_event("ok", "data", value)


# The parser itself, on the examples of the WHATWG standard (section 9.2.5/9.2.6) and the
# corner cases it spells out: if these failed, the round trips above would prove nothing.


def test_spec_example_multi_line_data() -> None:
    events, _ = parse(b"data: YHOO\ndata: +2\ndata: 10\n\n")
    assert events == [Event("message", "YHOO\n+2\n10", "")]


def test_spec_example_ids_persist_and_an_empty_id_resets() -> None:
    stream = (
        b": test stream\n\ndata: first event\nid: 1\n\n"
        b"data:second event\nid\n\ndata:  third event\n\n"
    )
    events, parser = parse(stream)
    assert events == [
        Event("message", "first event", "1"),
        Event("message", "second event", ""),
        Event("message", " third event", ""),
    ]
    assert parser.last_event_id == ""


def test_spec_example_bare_data_fields_and_an_unfinished_event() -> None:
    events, _ = parse(b"data\n\ndata\ndata\n\ndata:")
    assert events == [Event("message", "", ""), Event("message", "\n", "")]


def test_spec_example_space_after_colon_is_optional() -> None:
    events, _ = parse(b"data:test\n\ndata: test\n\n")
    assert events == [Event("message", "test", "")] * 2


def test_one_leading_bom_is_dropped_and_a_second_is_kept() -> None:
    events, _ = parse(b"\xef\xbb\xbfdata: a\n\n")
    assert events == [Event("message", "a", "")]
    events, _ = parse(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n")
    assert events == []  # the field name is now "\ufeffdata": ignored


def test_cr_alone_ends_lines_and_crlf_is_one_line_end() -> None:
    events, _ = parse(b"event: x\rdata: a\r\ndata: b\r\r\n")
    assert events == [Event("x", "a\nb", "")]


def test_id_with_nul_is_ignored_and_retry_needs_digits_only() -> None:
    events, parser = parse(
        b"id: 1\nretry: 300\n\nid: 2\x003\nretry: 1.5\nretry: -1\nretry:  7\ndata: x\n\n"
    )
    assert events == [Event("message", "x", "1")]
    assert parser.retry == 300


def test_unknown_fields_and_comments_are_ignored_and_an_empty_type_is_message() -> None:
    events, _ = parse(b"foo: bar\n:comment\nevent\ndata: x\n\nevent: \ndata: y\n\n")
    assert events == [Event("message", "x", ""), Event("message", "y", "")]


def test_invalid_utf8_becomes_replacement_characters() -> None:
    events, _ = parse(b"data: \xff\xfe\n\n")
    assert events == [Event("message", "\ufffd\ufffd", "")]


def test_an_id_only_block_sets_the_last_event_id_without_an_event() -> None:
    events, parser = parse(b"id: 9\n\n")
    assert events == []
    assert parser.last_event_id == "9"


def test_every_frame_also_returns_the_frames_a_browser_does_not_dispatch() -> None:
    stream = b": hi\n\nretry: 2000\n\nid: 3\n\nid: 4\nevent: e\ndata: x\n\n"
    assert parse(stream)[0] == [Event("e", "x", "4")]
    parser = EventStreamParser(every_frame=True)
    frames = parser.feed(stream)
    assert frames == [Event("", "", ""), Event("", "", "3"), Event("e", "x", "4")]
    assert [frame.fields for frame in frames] == [
        {"retry"},
        {"id"},
        {"id", "event", "data"},
    ]
