"""The load tests' invariant checker finds what it claims to: loss, duplicates, reordering,
other data than the log's, resets, and connection ends no fault explains."""

from __future__ import annotations

import zlib

import pytest

from loadtests.invariants import Fault, check, log_crcs
from loadtests.streams import Connection, StreamClient

CHANNELS = ("presence:a", "room:a", "typing:a")
LOG = log_crcs([("room:a", seq, f'"m{seq}"') for seq in range(1, 6)])
HEADS = {"room:a": 5}


def client(seqs: list[int], data: dict[int, str] | None = None, start: int = 0) -> StreamClient:
    stream = StreamClient(0, [8001], "/rooms/a/events/", "token", CHANNELS)
    stream.first_position = [0, start, 0]
    for seq in seqs:
        stream.logs["room:a"].seqs.append(seq)
        stream.logs["room:a"].crcs.append(zlib.crc32((data or {}).get(seq, f'"m{seq}"').encode()))
        stream.logs["room:a"].times.append(0.0)
    stream.connections.append(Connection(8001, 0.0, status=200, closed=100.0, ended="stopped"))
    return stream


def test_a_stream_that_got_every_event_once_in_order_passes() -> None:
    verdict = check([client([1, 2, 3, 4, 5])], LOG, HEADS, [])
    assert verdict.passed
    assert verdict.events == 5


def test_a_stream_that_started_later_is_checked_from_its_start() -> None:
    assert check([client([4, 5], start=3)], LOG, HEADS, []).passed


@pytest.mark.parametrize(
    ("seqs", "lost", "duplicated", "reordered"),
    [
        ([1, 2, 4, 5], 1, 0, 0),  # a hole
        ([1, 2, 3], 2, 0, 0),  # never caught up to the head
        ([1, 2, 2, 3, 4, 5], 0, 1, 0),
        ([1, 3, 2, 4, 5], 1, 0, 1),  # 2 came after 3: counted lost at 3, then out of order
    ],
)
def test_loss_duplicates_and_reordering_fail(
    seqs: list[int], lost: int, duplicated: int, reordered: int
) -> None:
    verdict = check([client(seqs)], LOG, HEADS, [])
    assert not verdict.passed
    assert (verdict.lost, verdict.duplicated, verdict.reordered) == (lost, duplicated, reordered)


def test_other_data_than_the_logs_fails() -> None:
    verdict = check([client([1, 2, 3, 4, 5], data={3: '"forged"'})], LOG, HEADS, [])
    assert verdict.corrupted == 1
    assert not verdict.passed


def test_a_reset_is_never_explained() -> None:
    stream = client([1, 2, 3, 4, 5])
    stream.resets.append((50.0, '{"reason": "expired"}'))
    assert not check([stream], LOG, HEADS, []).passed


def test_connection_ends_need_a_fault_of_their_kind_place_and_time() -> None:
    stream = client([1, 2, 3, 4, 5])
    stream.connections.insert(0, Connection(8001, 0.0, status=200, closed=30.0, ended="retry"))
    sigterm = Fault("SIGTERM worker", 29.5, 32.0, port=8001)
    assert check([stream], LOG, HEADS, [sigterm]).passed
    assert check([stream], LOG, HEADS, [Fault("SIGTERM worker", 29.5, 32.0, port=8002)]).unexplained
    assert check([stream], LOG, HEADS, [Fault("SIGTERM worker", 60.0, 62.0, port=8001)]).unexplained
    # A listener outage must not end streams: it explains nothing but refusals.
    assert check([stream], LOG, HEADS, [Fault("kill listener", 29.5, 30.5)]).unexplained
    dropped = client([1, 2, 3, 4, 5])
    dropped.connections.insert(0, Connection(8001, 0.0, status=200, closed=40.0, ended="dropped"))
    assert check(
        [dropped], LOG, HEADS, [Fault("drop mid-event", 39, 41, clients=frozenset({0}))]
    ).passed
    assert check(
        [dropped], LOG, HEADS, [Fault("drop mid-event", 39, 41, clients=frozenset({7}))]
    ).unexplained
