"""The tallies behind HubStats and /metrics: delivery lag, publish counts."""

from __future__ import annotations

import time

import pytest
from django.db import connection

import pgsse
from pgsse.log import LoggedEvent
from pgsse.stats import LAG_BUCKETS, DeliveryLag, LagHistogram, publish_stats


def event(created_at: float | None) -> LoggedEvent:
    return LoggedEvent("room:a", 1, "e", "1", created_at)


def test_each_event_lands_in_the_first_bucket_its_lag_fits() -> None:
    histogram = LagHistogram()
    now = time.time()
    # Lags are measured from now on: the bounds are far enough apart for the test's own time.
    histogram.observe([event(now - 0.3), event(now - 0.3), event(now - 100), event(now + 5)])
    lag = histogram.snapshot()
    assert lag.count == 4
    assert lag.counts[LAG_BUCKETS.index(0.5)] == 2  # 0.25 < 0.3 <= 0.5
    assert lag.counts[-1] == 1  # beyond the last bound
    assert lag.counts[0] == 1  # a clock ahead of ours counts as no lag
    assert 100.6 <= lag.total < 102


def test_events_without_a_stamp_are_not_counted() -> None:
    histogram = LagHistogram()
    histogram.observe([event(None), event(None)])
    assert histogram.snapshot().count == 0
    assert histogram.snapshot().total == 0


def test_quantiles_are_bucket_bounds() -> None:
    counts = [0] * (len(LAG_BUCKETS) + 1)
    counts[LAG_BUCKETS.index(0.005)] = 90
    counts[LAG_BUCKETS.index(1.0)] = 9
    counts[-1] = 1
    lag = DeliveryLag(LAG_BUCKETS, tuple(counts), 0.0)
    assert lag.quantile(0.5) == 0.005
    assert lag.quantile(0.9) == 0.005
    assert lag.quantile(0.95) == 1.0
    assert lag.quantile(1.0) == float("inf")
    assert DeliveryLag().quantile(0.5) is None


@pytest.mark.django_db(transaction=True)
def test_publish_counts_events_and_errors_by_kind() -> None:
    before = publish_stats()
    pgsse.publish("room:counted", "e", 1)
    pgsse.publish_many([("room:counted", "e", 2), ("room:other", "e", 3)])
    with pytest.raises(pgsse.InvalidChannel):
        pgsse.publish("", "e", 1)
    with pytest.raises(pgsse.InvalidEvent):
        pgsse.publish_many([("room:counted", "reset", 1)])
    with connection.cursor() as cursor:  # the log's table is gone: the append fails
        cursor.execute("ALTER TABLE pgsse_event RENAME TO pgsse_event_away")
    try:
        with pytest.raises(Exception, match="pgsse_event"):
            pgsse.publish("room:counted", "e", 4)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE pgsse_event_away RENAME TO pgsse_event")
    after = publish_stats()
    assert after.events - before.events == 3
    assert after.errors.get("invalid", 0) - before.errors.get("invalid", 0) == 2
    assert after.errors.get("database", 0) - before.errors.get("database", 0) == 1
