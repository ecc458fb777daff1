"""pgsse.testing.capture_events() under both kinds of Django test case, on real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from unittest import mock

import pytest
from django.db import connection, transaction
from django.test import TestCase, TransactionTestCase

from pgsse import apublish, publish, publish_many
from pgsse.publish import publish_observers
from pgsse.testing import CapturedEvent, capture_events


class Boom(Exception):
    pass


def publish_and_fail(channel: str, data: object) -> None:
    with transaction.atomic():
        publish(channel, "t", data)
        raise Boom


class CaptureInTestCase(TestCase):
    """The test's transaction never commits: what would have committed is recorded."""

    def test_publishes_outside_the_tests_blocks_are_recorded(self) -> None:
        with capture_events() as events:
            publish("room:a", "created", {"id": 1})
            publish("room:a", "created", {"id": 2})
            assert len(events) == 2
        # Seqs are given at commit, which never comes under TestCase.
        assert events.events == [
            CapturedEvent("room:a", "created", {"id": 1}, None, '{"id":1}'),
            CapturedEvent("room:a", "created", {"id": 2}, None, '{"id":2}'),
        ]

    def test_an_atomic_block_counts_once_it_ends_and_not_if_it_fails(self) -> None:
        with capture_events() as events:
            with transaction.atomic():
                publish("room:a", "t", "kept")
                with transaction.atomic():
                    publish("room:a", "t", "nested, kept")
                assert events.events == [], "the outer block is still open"
                with pytest.raises(Boom):
                    publish_and_fail("room:a", "rolled back")
            assert [e.data for e in events] == ["kept", "nested, kept"]
            with pytest.raises(Boom):
                publish_and_fail("room:b", "rolled back too")
        assert [(e.channel, e.data) for e in events] == [
            ("room:a", "kept"),
            ("room:a", "nested, kept"),
        ]
        events.assert_not_published("room:b")

    def test_a_block_still_open_when_the_capture_ends_is_not_recorded(self) -> None:
        with transaction.atomic():
            with capture_events() as events:
                publish("room:a", "t", 1)
            publish("room:a", "t", 2)
        assert events.events == []

    def test_earlier_blocks_count_while_a_later_one_is_open(self) -> None:
        with capture_events() as events:
            with transaction.atomic():
                publish("room:a", "t", "first")
            with transaction.atomic():
                publish("room:a", "t", "second")
                assert [e.data for e in events] == ["first"]
        assert [e.data for e in events] == ["first", "second"]

    def test_publish_many_and_django_types(self) -> None:
        moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        with capture_events() as events:
            publish_many([("room:b", "t", {"at": moment}), ("room:a", "t", (1, 2))])
        assert [(e.channel, e.data) for e in events] == [
            ("room:b", {"at": "2026-01-02T03:04:05Z"}),
            ("room:a", [1, 2]),
        ]

    def test_django_executing_the_callbacks_records_nothing_twice(self) -> None:
        with capture_events() as events:
            with self.captureOnCommitCallbacks(execute=True) as callbacks, transaction.atomic():
                publish("room:a", "t", 1)
            # The capture's, and the one that wakes the listeners once committed.
            assert len(callbacks) == 2
            publish("room:a", "t", 2)
        assert [e.data for e in events] == [1, 2]

    async def test_apublish_in_an_async_test(self) -> None:
        with capture_events() as events:
            await apublish("room:async", "t", "hi")
        events.assert_published("room:async", "t", "hi")

    def test_nothing_is_recorded_outside_the_block(self) -> None:
        publish("room:a", "t", "before")
        with capture_events() as events:
            pass
        publish("room:a", "t", "after")
        assert events.events == []
        assert publish_observers == []


class AssertionHelpers(TestCase):
    def test_assert_published_matches_channel_type_data_and_count(self) -> None:
        with capture_events() as events:
            publish("user:7", "order_created", {"id": 1, "total": "9.50"})
            publish("user:7", "order_created", {"id": 2, "total": "1.00"})
            publish("user:8", "order_created", {"id": 3})
        (match,) = events.assert_published("user:7", "order_created", {"id": 2, "total": "1.00"})
        assert match.text == '{"id":2,"total":"1.00"}'
        events.assert_published("user:7", "order_created", count=2)
        events.assert_published("user:7", "order_created", {"id": mock.ANY, "total": "9.50"})
        events.assert_published("user:8", "order_created", mock.ANY, count=1)
        events.assert_not_published("user:9")
        events.assert_not_published(event_type="order_deleted")
        assert [e.data["id"] for e in events.on("user:7")] == [1, 2]

    def test_failures_say_what_was_expected_and_what_was_committed(self) -> None:
        with capture_events() as events:
            publish("user:7", "order_created", {"id": 1})
        with pytest.raises(AssertionError) as failure:
            events.assert_published("user:7", "order_created", {"id": 2})
        assert (
            str(failure.value)
            == "expected 'order_created' on 'user:7' with data {'id': 2} committed at least once,"
            " found 0; committed: 'user:7' 'order_created' {\"id\":1}"
        )
        with pytest.raises(AssertionError, match="committed 2 times, found 1;"):
            events.assert_published("user:7", "order_created", count=2)
        with pytest.raises(AssertionError, match="expected no event on 'user:7' committed"):
            events.assert_not_published("user:7")
        with pytest.raises(AssertionError, match="expected no event committed"):
            events.assert_not_published()
        with capture_events() as nothing:
            pass
        with pytest.raises(AssertionError, match="committed: nothing"):
            nothing.assert_published("user:7", "order_created")


class CaptureInTransactionTestCase(TransactionTestCase):
    """Real commits: recorded when PostgreSQL commits, and only then."""

    def test_recorded_at_commit_not_before_and_never_if_rolled_back(self) -> None:
        with capture_events() as events:
            publish("room:a", "t", "autocommit")
            assert len(events) == 1
            with transaction.atomic():
                publish("room:a", "t", "in a transaction")
                assert len(events) == 1
            assert len(events) == 2
            with pytest.raises(Boom):
                publish_and_fail("room:a", "rolled back")
            publish_many([("room:b", "t", 1), ("room:a", "t", 2)])
        assert [(e.channel, e.seq, e.data) for e in events] == [
            ("room:a", 1, "autocommit"),
            ("room:a", 2, "in a transaction"),
            ("room:b", 1, 1),
            ("room:a", 3, 2),
        ]

    def test_publishes_of_other_threads_are_recorded(self) -> None:
        def publish_elsewhere() -> None:
            try:
                with transaction.atomic():
                    publish("room:thread", "t", "from a thread")
            finally:
                connection.close()

        with capture_events() as events:
            thread = threading.Thread(target=publish_elsewhere)
            thread.start()
            thread.join()
        events.assert_published("room:thread", "t", "from a thread", count=1)

    def test_a_commit_after_the_block_is_not_recorded(self) -> None:
        with transaction.atomic():
            with capture_events() as events:
                publish("room:a", "t", 1)
            assert events.events == []
        assert events.events == []


@pytest.mark.django_db
def test_pytest_djangos_db_mark_is_a_test_case_transaction() -> None:
    with capture_events() as events:
        with transaction.atomic():
            publish("room:a", "t", "kept")
        with pytest.raises(Boom):
            publish_and_fail("room:a", "rolled back")
    events.assert_published("room:a", "t", count=1)
    events.assert_published("room:a", "t", "kept")
