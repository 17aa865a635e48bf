"""The idempotency keys that placed an order lately, so the sold-out gate never refuses a
retry of an order that exists (the database would answer it with its order).

Redis when configured (every gateway's orders, kept a day: as long as a guest's retry is
answered), else this process's memory (its own orders, at most MEMORY_KEYS of them). What
neither holds, an order placed before the process started or before Redis lost its data, is
the gap: a retry of such an order arriving during a sold-out SKU's closed second is told
OUT_OF_STOCK, and answered with its order on the next try after that second.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from broker.redis_client import UNREACHABLE, redis_client

KEPT_SECONDS = 24 * 3600
MEMORY_KEYS = 200_000


class PlacedKeys(Protocol):
    async def add(self, channel_id: int, key: str) -> None: ...

    async def has(self, channel_id: int, key: str) -> bool: ...

    async def close(self) -> None: ...


class MemoryPlacedKeys:
    def __init__(self, size: int = MEMORY_KEYS, kept_seconds: float = KEPT_SECONDS) -> None:
        self._keys: OrderedDict[tuple[int, str], float] = OrderedDict()
        self._size = size
        self._kept = kept_seconds

    async def add(self, channel_id: int, key: str) -> None:
        self._keys[(channel_id, key)] = time.monotonic() + self._kept
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)

    async def has(self, channel_id: int, key: str) -> bool:
        until = self._keys.get((channel_id, key))
        return until is not None and until > time.monotonic()

    async def close(self) -> None:
        self._keys.clear()


class RedisPlacedKeys:
    """Every gateway's keys in Redis, this process's own in memory as well.

    While Redis cannot be reached (a second at a time, services/core/fallback.py), a key this
    process does not know counts as placed: the gate then lets the attempt through to the
    database, which knows, rather than refuse what it cannot check.
    """

    def __init__(self, url: str, *, prefix: str) -> None:
        self._redis = redis_client(url)
        self._prefix = prefix + "placed:"
        self._local = MemoryPlacedKeys()
        self._down_until = 0.0

    async def add(self, channel_id: int, key: str) -> None:
        await self._local.add(channel_id, key)
        if time.monotonic() < self._down_until:
            return
        try:
            await self._redis.set(f"{self._prefix}{channel_id}:{key}", b"1", ex=KEPT_SECONDS)
        except UNREACHABLE:
            self._down_until = time.monotonic() + 1.0

    async def has(self, channel_id: int, key: str) -> bool:
        if await self._local.has(channel_id, key) or time.monotonic() < self._down_until:
            return True
        try:
            return bool(await self._redis.exists(f"{self._prefix}{channel_id}:{key}"))
        except UNREACHABLE:
            self._down_until = time.monotonic() + 1.0
            return True

    async def close(self) -> None:
        await self._redis.aclose()


def connect_placed_keys(redis_url: str | None, *, prefix: str) -> PlacedKeys:
    return RedisPlacedKeys(redis_url, prefix=prefix) if redis_url else MemoryPlacedKeys()
