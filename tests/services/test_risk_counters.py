"""Sliding-window counters: attempts and distinct members in the last window, on either backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from domain.risk import CounterHit
from services.risk_counters import FIRST_SEEN_IDLE_SECONDS, Counters, connect_counters
from tests.support import TEST_REDIS_URL


@pytest.fixture
async def counters() -> AsyncIterator[Counters]:
    # Redis in the PostgreSQL and Redis run, memory otherwise; a prefix of its own per test.
    backend = connect_counters(TEST_REDIS_URL, prefix=f"quanyi-test-{uuid.uuid4().hex[:8]}:")
    yield backend
    await backend.close()


async def test_attempts_are_counted_over_a_sliding_window(counters: Counters) -> None:
    attempt = CounterHit("v:IP:60:203.0.113.7", None, 60)

    seen = [await counters.hit([attempt], at) for at in (1000.0, 1010.0, 1050.0, 1065.0, 1111.0)]

    # At 1065 the attempt of 1000 has left the window; at 1111 only 1065 and 1111 are in it.
    assert seen == [[1], [2], [3], [3], [2]]


async def test_distinct_members_are_counted_once(counters: Counters) -> None:
    def account(name: str) -> CounterHit:
        return CounterHit("a:DEVICE:600:d-1", name, 600)

    seen = [await counters.hit([account(name)], 1000.0 + n) for n, name in enumerate(["qq:1", "qq:2", "qq:1", "qq:3"])]

    assert seen == [[1], [2], [2], [3]]


async def test_one_call_counts_several_keys(counters: Counters) -> None:
    hits = [CounterHit("v:IP:60:a", None, 60), CounterHit("v:PHONE:60:b", None, 60)]
    await counters.hit(hits[:1], 1000.0)

    assert await counters.hit(hits, 1001.0) == [2, 1]


NEW_ACCOUNTS = CounterHit("a:DEVICE:3600:farm", None, 3600, new_within_seconds=0)


def by(account: str) -> CounterHit:
    return CounterHit(NEW_ACCOUNTS.key, account, 3600, new_within_seconds=0)


async def test_an_account_the_store_has_not_seen_is_reported_unknown_and_counts_nowhere(counters: Counters) -> None:
    asked = await counters.tally([by("qq:1")], 1000.0, account="qq:1")
    # Told its first order (none): a new account, counted, and remembered from now on.
    seeded = await counters.tally([by("qq:1")], 1000.0, account="qq:1", seed=None)
    again = await counters.tally([by("qq:1")], 1030.0, account="qq:1")

    assert (asked.unknown, asked.counts) == (True, [0])
    assert (seeded.unknown, seeded.first_seen, seeded.counts) == (False, None, [1])
    assert (again.unknown, again.first_seen, again.counts) == (False, 1000.0, [1])


async def test_an_account_that_ordered_before_is_not_new(counters: Counters) -> None:
    # qq:old first ordered at 500; qq:new never did.
    old = await counters.tally([by("qq:old")], 1000.0, account="qq:old", seed=500.0)
    new = await counters.tally([by("qq:new")], 1001.0, account="qq:new", seed=None)
    old_again = await counters.tally([by("qq:old")], 1002.0, account="qq:old")

    assert (old.first_seen, old.counts) == (500.0, [0])
    assert (new.first_seen, new.counts) == (None, [1])
    assert (old_again.unknown, old_again.first_seen, old_again.counts) == (False, 500.0, [1])


async def test_an_account_is_new_for_as_long_as_the_rule_says(counters: Counters) -> None:
    def within_a_day(account: str) -> CounterHit:
        return CounterHit("a:PHONE:604800:13800138000", account, 604800, new_within_seconds=86400)

    first = await counters.tally([within_a_day("qq:1")], 1000.0, account="qq:1", seed=None)
    same_day = await counters.tally([within_a_day("qq:1"), CounterHit("v:IP:60:a", None, 60)], 1000.0 + 3600, account="qq:1")
    other = await counters.tally([within_a_day("qq:2")], 1000.0 + 3700, account="qq:2", seed=None)
    next_week = await counters.tally([within_a_day("qq:1")], 1000.0 + 86400 * 6, account="qq:1")

    assert [first.counts, same_day.counts, other.counts, next_week.counts] == [[1], [1, 1], [2], [2]]
    assert next_week.first_seen == 1000.0


async def test_an_account_idle_longer_than_the_store_keeps_it_is_looked_up_again(counters: Counters) -> None:
    await counters.tally([by("qq:1")], 1000.0, account="qq:1", seed=None)

    later = await counters.tally([], 1000.0 + FIRST_SEEN_IDLE_SECONDS + 1, account="qq:1")

    assert later.unknown
