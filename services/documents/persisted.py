"""The store of automatic persisted queries (Apollo's APQ): a document's text under its SHA-256.

A client sends the hash alone; the gateway answers `PersistedQueryNotFound` when it does not
know it, and the client sends the text once with the hash, which is then kept. Anyone may
register a document this way, so the store is bounded however it is flooded: at most
`size` documents of at most `max_bytes` each, the least recently used leaving first — in
this process's memory, or in Redis (shared by every gateway process) when it is configured.
While Redis cannot be reached each process keeps its own (services/core/fallback.py): a
client whose hash is not found sends the text again, so nothing fails.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from broker.redis_client import redis_client
from services.core.fallback import Fallback


class PersistedQueries(Protocol):
    async def get(self, digest: str) -> str | None: ...

    async def put(self, digest: str, query: str) -> None: ...

    async def close(self) -> None: ...


class MemoryPersistedQueries:
    def __init__(self, *, size: int, max_bytes: int) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._items: OrderedDict[str, str] = OrderedDict()

    async def get(self, digest: str) -> str | None:
        query = self._items.get(digest)
        if query is not None:
            self._items.move_to_end(digest)
        return query

    async def put(self, digest: str, query: str) -> None:
        if len(query.encode()) > self._max_bytes:
            return  # runs, but is not kept: its client sends the text each time
        self._items[digest] = query
        self._items.move_to_end(digest)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    async def close(self) -> None:
        self._items.clear()


# KEYS[1]: the index, a sorted set of digests by last use (ms); KEYS[2]: the document's key.
# ARGV: the digest, the document (put only), the bound on documents, the TTL in seconds.
# Putting past the bound removes the least recently used documents in the same step.
_PUT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('SET', KEYS[2], ARGV[2], 'EX', tonumber(ARGV[4]))
redis.call('ZADD', KEYS[1], now, ARGV[1])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[1], over)
  for i = 1, #oldest, 2 do
    redis.call('DEL', KEYS[3] .. oldest[i])
  end
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""
_GET = """
local query = redis.call('GET', KEYS[2])
if query then
  local clock = redis.call('TIME')
  redis.call('ZADD', KEYS[1], tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000), ARGV[1])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
end
return query
"""


class RedisPersistedQueries:
    """Documents shared by every gateway process; each also expires after `ttl_seconds` unused."""

    def __init__(self, url: str, *, prefix: str, size: int, max_bytes: int, ttl_seconds: int = 7 * 24 * 3600) -> None:
        self._redis = redis_client(url)
        self._documents = prefix + "{apq}:doc:"  # one hash slot with the index, for Redis Cluster
        self._index = prefix + "{apq}:index"
        self._size = size
        self._max_bytes = max_bytes
        self._ttl = ttl_seconds
        self._put = self._redis.register_script(_PUT)
        self._get = self._redis.register_script(_GET)

    async def get(self, digest: str) -> str | None:
        found = await self._get(keys=[self._index, self._documents + digest], args=[digest, self._ttl])
        return found.decode() if found is not None else None

    async def put(self, digest: str, query: str) -> None:
        encoded = query.encode()
        if len(encoded) > self._max_bytes:
            return
        # KEYS[3] is the documents' prefix, so the script can remove the ones it evicts.
        await self._put(keys=[self._index, self._documents + digest, self._documents],
                        args=[digest, encoded, self._size, self._ttl])

    async def close(self) -> None:
        await self._redis.aclose()


class FallbackPersistedQueries:
    """Redis's store while it answers, this process's own while it does not."""

    def __init__(self, shared: RedisPersistedQueries, local: MemoryPersistedQueries) -> None:
        self._shared, self._local = shared, local
        self._fallback = Fallback("persisted queries")

    async def get(self, digest: str) -> str | None:
        return await self._fallback.call(lambda: self._shared.get(digest), lambda: self._local.get(digest))

    async def put(self, digest: str, query: str) -> None:
        await self._fallback.call(lambda: self._shared.put(digest, query), lambda: self._local.put(digest, query))

    async def close(self) -> None:
        await self._shared.close()
        await self._local.close()


def connect_persisted_queries(redis_url: str | None, *, prefix: str, size: int, max_bytes: int) -> PersistedQueries:
    local = MemoryPersistedQueries(size=size, max_bytes=max_bytes)
    if redis_url:
        return FallbackPersistedQueries(RedisPersistedQueries(redis_url, prefix=prefix, size=size, max_bytes=max_bytes), local)
    return local
