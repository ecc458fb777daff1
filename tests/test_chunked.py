"""The chunked-body decoder the raw-socket clients share, on bodies split anywhere."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.chunked import ChunkedDecoder, dechunk


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=8), st.data())
def test_a_body_split_anywhere_decodes_to_its_payload(
    pieces: list[bytes], data: st.DataObject
) -> None:
    body = chunked(*pieces)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=6)))
    decoder, out = ChunkedDecoder(), b""
    for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True):
        out += decoder.feed(body[start:end])
    assert out == b"".join(pieces)
    assert decoder.ended
    unfinished = ChunkedDecoder()
    unfinished.feed(body[:-1])
    assert not unfinished.ended


def test_extensions_and_trailers_are_skipped_and_a_truncated_body_gives_what_it_has() -> None:
    assert dechunk(b"3;name=value\r\nabc\r\n0\r\nExpires: never\r\n\r\n") == b"abc"
    assert dechunk(b"3\r\nabc\r\n5\r\nde") == b"abcde"
    decoder = ChunkedDecoder()
    decoder.feed(b"3\r\nabc\r\n0\r\n\r\n")
    assert decoder.ended
    assert decoder.feed(b"3\r\nxyz\r\n") == b""


def test_a_chunk_without_its_crlf_is_an_error() -> None:
    with pytest.raises(ValueError, match="CRLF"):
        dechunk(b"3\r\nabcX\r\n")
