"""Sliding-window counters: attempts and distinct members in the last window, on either backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from domain.risk import CounterHit
from services.risk_counters import Counters, connect_counters
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
