"""Sliding-window counters: attempts and distinct members in the last window, on either backend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from domain.risk import CounterHit
from services.risk.counters import (
    ATTEMPT_KEPT_SECONDS,
    FIRST_SEEN_IDLE_SECONDS,
    Counters,
    connect_counters,
)
from tests.support import TEST_REDIS_URL


@pytest.fixture
async def counters() -> AsyncIterator[Counters]:
    # Redis in the PostgreSQL and Redis run, memory otherwise; a prefix of its own per test.
    backend = connect_counters(TEST_REDIS_URL, prefix=f"quanyi-test-{uuid.uuid4().hex[:8]}:")
    yield backend
    await backend.close()


async def test_attempts_are_counted_over_a_sliding_window(counters: Counters) -> None:
    attempt = CounterHit("v:IP:60:203.0.113.7", None, 60)

    seen = [(await counters.tally([attempt], at)).counts for at in (1000.0, 1010.0, 1050.0, 1065.0, 1111.0)]

    # At 1065 the attempt of 1000 has left the window; at 1111 only 1065 and 1111 are in it.
    assert seen == [[1], [2], [3], [3], [2]]


async def test_distinct_members_are_counted_once(counters: Counters) -> None:
    def account(name: str) -> CounterHit:
        return CounterHit("a:DEVICE:600:d-1", name, 600)

    seen = [(await counters.tally([account(name)], 1000.0 + n)).counts for n, name in enumerate(["qq:1", "qq:2", "qq:1", "qq:3"])]

    assert seen == [[1], [2], [2], [3]]


async def test_one_call_counts_several_keys(counters: Counters) -> None:
    hits = [CounterHit("v:IP:60:a", None, 60), CounterHit("v:PHONE:60:b", None, 60)]
    await counters.tally(hits[:1], 1000.0)

    assert (await counters.tally(hits, 1001.0)).counts == [2, 1]


def by(account: str, *, new_within_days: int = 0) -> CounterHit:
    """A new-account counter of one device; an account counts as new while younger than the days given."""
    return CounterHit("a:DEVICE:604800:farm", account, 604800, new_within_seconds=new_within_days * 86400)


async def test_an_account_is_counted_as_new_only_on_its_first_attempt(counters: Counters) -> None:
    first = await counters.tally([by("qq:1")], 1000.0, account="qq:1")
    again = await counters.tally([by("qq:1")], 1030.0, account="qq:1")
    other = await counters.tally([by("qq:2")], 1040.0, account="qq:2")

    assert (first.unknown, first.first_seen, first.counts) == (True, None, [1])
    assert (again.unknown, again.first_seen, again.counts) == (False, 1000.0, [1])
    assert (other.unknown, other.first_seen, other.counts) == (True, None, [2])


async def test_an_account_that_ordered_before_the_store_saw_it_is_taken_back_out(counters: Counters) -> None:
    await counters.tally([by("qq:new")], 1000.0, account="qq:new")
    taken_for_new = await counters.tally([by("qq:old")], 1001.0, account="qq:old")

    # qq:old first ordered at 500: not new, so not one of the device's new accounts.
    corrected = await counters.correct([by("qq:old")], 1001.0, account="qq:old", first_order=500.0)
    later = await counters.tally([by("qq:old")], 1002.0, account="qq:old")

    assert (taken_for_new.unknown, taken_for_new.counts) == (True, [2])
    assert corrected == [1]
    assert (later.unknown, later.first_seen, later.counts) == (False, 500.0, [1])


async def test_an_account_is_new_for_as_long_as_the_rule_says(counters: Counters) -> None:
    ip = CounterHit("v:IP:60:a", None, 60)

    first = await counters.tally([by("qq:1", new_within_days=1)], 1000.0, account="qq:1")
    same_day = await counters.tally([by("qq:1", new_within_days=1), ip], 1000.0 + 3600, account="qq:1")
    other = await counters.tally([by("qq:2", new_within_days=1)], 1000.0 + 3700, account="qq:2")
    old_by_then = await counters.tally([by("qq:1", new_within_days=1)], 1000.0 + 86400 * 6, account="qq:1")
    # Taken back out only by a rule it is too old for.
    kept = await counters.correct([by("qq:2", new_within_days=30)], 1000.0 + 86400 * 6, account="qq:2", first_order=1000.0)

    assert [first.counts, same_day.counts, other.counts, old_by_then.counts, kept] == [[1], [1, 1], [2], [2], [2]]
    assert old_by_then.first_seen == 1000.0


async def test_an_account_idle_longer_than_the_store_keeps_it_is_looked_up_again(counters: Counters) -> None:
    await counters.tally([by("qq:1")], 1000.0, account="qq:1")

    later = await counters.tally([], 1000.0 + FIRST_SEEN_IDLE_SECONDS + 1, account="qq:1")

    assert later.unknown


# An attempt (channel and idempotency key) is counted once: its retries get its first answers.

IP = CounterHit("v:IP:60:a", None, 60)


async def test_a_retry_of_an_attempt_records_nothing_and_gets_the_count_of_its_first_try(counters: Counters) -> None:
    first = await counters.tally([IP], 1000.0, attempt="web:k1")
    retries = [await counters.tally([IP], 1000.0 + n, attempt="web:k1") for n in range(1, 4)]
    other = await counters.tally([IP], 1005.0, attempt="web:k2")
    retry_after_other = await counters.tally([IP], 1006.0, attempt="web:k1")

    assert [first.counts, *(r.counts for r in retries), other.counts, retry_after_other.counts] == [[1], [1], [1], [1], [2], [1]]


async def test_concurrent_retries_of_an_attempt_are_counted_once(counters: Counters) -> None:
    tallies = await asyncio.gather(*(counters.tally([IP], 1000.0, attempt="web:k1") for _ in range(10)))
    after = await counters.tally([IP], 1001.0, attempt="web:k2")

    assert [t.counts for t in tallies] == [[1]] * 10 and after.counts == [2]


async def test_an_attempt_retried_after_its_window_is_counted_in_the_new_window(counters: Counters) -> None:
    await counters.tally([IP], 1000.0, attempt="web:k1")
    await counters.tally([IP], 1010.0, attempt="web:k2")

    later = await counters.tally([IP], 1061.0, attempt="web:k1")  # k1's first try has left the window

    assert later.counts == [2]


async def test_a_counter_the_first_try_did_not_have_is_counted_once(counters: Counters) -> None:
    phone = CounterHit("v:PHONE:60:p", None, 60)
    await counters.tally([IP], 1000.0, attempt="web:k1")

    # A rule added meanwhile: the retry is counted by the new counter, once.
    retries = [await counters.tally([IP, phone], 1001.0 + n, attempt="web:k1") for n in range(3)]

    assert [r.counts for r in retries] == [[1, 1]] * 3


async def test_a_retry_sees_the_account_as_its_first_try_did(counters: Counters) -> None:
    first = await counters.tally([by("qq:1")], 1000.0, account="qq:1", attempt="web:k1")
    retry = await counters.tally([by("qq:1")], 1030.0, account="qq:1", attempt="web:k1")
    next_order = await counters.tally([by("qq:1")], 1040.0, account="qq:1", attempt="web:k2")

    assert (first.unknown, first.first_seen, first.counts) == (True, None, [1])
    assert (retry.unknown, retry.first_seen, retry.counts) == (True, None, [1])
    # Another attempt of the account is not its first: the store knows it since 1000.
    assert (next_order.unknown, next_order.first_seen) == (False, 1000.0)


async def test_a_correction_made_for_an_attempt_stands_for_its_retries(counters: Counters) -> None:
    await counters.tally([by("qq:new")], 1000.0, account="qq:new")
    await counters.tally([by("qq:old")], 1001.0, account="qq:old", attempt="web:k1")
    corrected = await counters.correct([by("qq:old")], 1001.0, account="qq:old", first_order=500.0, attempt="web:k1")

    retry = await counters.tally([by("qq:old")], 1002.0, account="qq:old", attempt="web:k1")
    again = await counters.correct([by("qq:old")], 1003.0, account="qq:old", first_order=500.0, attempt="web:k1")

    assert corrected == [1]
    assert (retry.unknown, retry.first_seen, retry.counts) == (False, 500.0, [1])
    assert again == [1]


async def test_an_attempt_retried_after_its_answers_were_let_go_still_adds_nothing(counters: Counters) -> None:
    week = CounterHit("v:PHONE:604800:p", None, 604800)
    await counters.tally([week], 1000.0, attempt="web:k1")
    await counters.tally([week], 1010.0, attempt="web:k2")

    # Two days on, past how long an attempt's answers are kept, the window still holds k1 once.
    await counters.tally([week], 1000.0 + 2 * ATTEMPT_KEPT_SECONDS, attempt="web:k1")
    third = await counters.tally([week], 1001.0 + 2 * ATTEMPT_KEPT_SECONDS, attempt="web:k3")
    # A week after k1's first try it has left the window: its retry did not renew it.
    fourth = await counters.tally([week], 1001.0 + 604800, attempt="web:k4")

    assert (third.counts, fourth.counts) == ([3], [3])
