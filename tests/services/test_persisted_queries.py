"""The store of automatic persisted queries: bounded, least recently used first out, and
still answering while Redis is away."""

from __future__ import annotations

import uuid

import pytest

from services.documents.persisted import MemoryPersistedQueries, connect_persisted_queries
from tests.support import TEST_REDIS_URL

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


async def test_the_least_recently_used_document_leaves_first() -> None:
    store = MemoryPersistedQueries(size=2, max_bytes=100)
    await store.put("a", "{ a }")
    await store.put("b", "{ b }")
    assert await store.get("a") == "{ a }"  # used: b is now the oldest

    await store.put("c", "{ c }")

    assert [await store.get(d) for d in "abc"] == ["{ a }", None, "{ c }"]


async def test_a_document_larger_than_the_bound_is_not_kept() -> None:
    store = MemoryPersistedQueries(size=10, max_bytes=10)
    await store.put("big", "{ " + "é" * 5 + " }")  # 9 characters, 14 bytes

    assert (await store.get("big"), len(store)) == (None, 0)


async def test_while_redis_is_away_each_process_keeps_its_own() -> None:
    store = connect_persisted_queries(UNREACHABLE_REDIS, prefix="quanyi-test:", size=10, max_bytes=1000)
    try:
        await store.put("d" * 64, "{ channels { code } }")

        assert await store.get("d" * 64) == "{ channels { code } }"
    finally:
        await store.close()


@pytest.mark.skipif(TEST_REDIS_URL is None, reason="the PostgreSQL and Redis run holds it")
async def test_in_redis_the_store_is_shared_and_bounded() -> None:
    assert TEST_REDIS_URL is not None
    prefix = f"quanyi-test-{uuid.uuid4().hex[:8]}:"
    one = connect_persisted_queries(TEST_REDIS_URL, prefix=prefix, size=3, max_bytes=1000)
    other = connect_persisted_queries(TEST_REDIS_URL, prefix=prefix, size=3, max_bytes=1000)
    try:
        for n in range(5):
            await one.put(f"{n:064x}", f"{{ n{n} }}")

        assert [await other.get(f"{n:064x}") for n in range(5)] == [None, None, "{ n2 }", "{ n3 }", "{ n4 }"]
    finally:
        await one.close()
        await other.close()
