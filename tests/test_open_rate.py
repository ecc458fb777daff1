"""How often a user, or an address, may open a stream: a third of a minute's allowance at
once, then at the allowed rate; refusals say when to come back."""

from __future__ import annotations

import dataclasses

from pgsse.admission import Refusal
from pgsse.conf import PgsseSettings
from pgsse.open_rate import OpenRate
from pgsse.stats import Counters

SETTINGS = PgsseSettings(OPENS_PER_MINUTE_PER_USER=30, OPENS_PER_MINUTE_PER_ADDRESS=90)


def rate(**settings: object) -> tuple[OpenRate, Counters]:
    counters = Counters()
    chosen = dataclasses.replace(SETTINGS, **settings)  # type: ignore[arg-type]
    return OpenRate(lambda: chosen, counters), counters


def test_a_user_opens_a_third_of_a_minutes_allowance_at_once_then_is_refused() -> None:
    opens, counters = rate()
    assert [opens.refuse_user("user:1") for _ in range(10)] == [None] * 10
    refusal = opens.refuse_user("user:1")
    assert isinstance(refusal, Refusal)
    assert (refusal.status, refusal.reason) == (429, "user_rate")
    assert "30 a minute" in refusal.message
    assert 1 <= refusal.retry_after <= 2  # one open every 2 s
    assert opens.refuse_user("user:2") is None  # others are not concerned
    assert opens.refuse_user("") is None  # anonymous streams count by address only
    assert counters.streams_refused == {"user_rate": 1}


def test_an_address_is_counted_apart_from_users() -> None:
    opens, _ = rate()
    assert all(opens.refuse_address("192.0.2.7") is None for _ in range(30))
    refusal = opens.refuse_address("192.0.2.7")
    assert refusal is not None
    assert refusal.reason == "address_rate"
    assert opens.refuse_address("192.0.2.8") is None
    assert opens.refuse_user("user:1") is None


def test_none_turns_a_rate_off() -> None:
    opens, _ = rate(OPENS_PER_MINUTE_PER_USER=None, OPENS_PER_MINUTE_PER_ADDRESS=None)
    assert all(opens.refuse_user("user:1") is None for _ in range(1000))
    assert all(opens.refuse_address("192.0.2.7") is None for _ in range(1000))


def test_the_clients_remembered_are_bounded() -> None:
    opens, _ = rate()
    for n in range(60_000):
        opens.refuse_address(f"10.0.{n // 256}.{n % 256}")
    assert len(opens._buckets) <= 50_000
