"""Sliding-window counters for the risk check: Redis sorted sets, or this process's memory.

`hit` records each member under its key and returns, per key, the distinct members seen in
the key's window, in one atomic step: of twenty concurrent attempts against a limit of
five, each sees a different count, so exactly five pass.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from domain.risk import MAX_WINDOW_SECONDS, CounterHit


class Counters(Protocol):
    async def hit(self, hits: Sequence[CounterHit], now: float) -> list[int]: ...

    async def close(self) -> None: ...


class MemoryCounters:
    """One process's counters: enough for one gateway process, lost on restart."""

    SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        # key -> member -> last seen; dicts keep insertion order, and a member seen again
        # is moved to the end, so the oldest entry of a key is always its first.
        self._keys: dict[str, dict[str, float]] = {}
        self._hits = 0

    async def hit(self, hits: Sequence[CounterHit], now: float) -> list[int]:
        # No await between reading and writing: under asyncio this is atomic.
        counts = []
        for hit in hits:
            members = self._keys.setdefault(hit.key, {})
            self._trim(members, now - hit.window_seconds)
            member = hit.member if hit.member is not None else uuid.uuid4().hex
            members.pop(member, None)
            members[member] = now
            counts.append(len(members))
        self._hits += 1
        if self._hits % self.SWEEP_EVERY == 0:
            self._sweep(now)
        return counts

    @staticmethod
    def _trim(members: dict[str, float], cutoff: float) -> None:
        while members:
            oldest = next(iter(members))
            if members[oldest] > cutoff:
                return
            del members[oldest]

    def _sweep(self, now: float) -> None:
        # Keys nobody hits again would stay forever; the longest window bounds what may go.
        for key in list(self._keys):
            members = self._keys[key]
            if not members or max(members.values()) <= now - MAX_WINDOW_SECONDS:
                del self._keys[key]

    async def close(self) -> None:
        self._keys.clear()


# KEYS: the counters; ARGV: now in ms, then a member and a window in ms per key.
_HIT = """
local now = tonumber(ARGV[1])
local counts = {}
for i, key in ipairs(KEYS) do
  local member = ARGV[2 * i]
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  counts[i] = redis.call('ZCARD', key)
end
return counts
"""


class RedisCounters:
    """Counters shared by every gateway process: one Lua script trims, adds and counts."""

    def __init__(self, url: str, *, prefix: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self._prefix = prefix + "risk:"
        self._script = self._redis.register_script(_HIT)

    async def hit(self, hits: Sequence[CounterHit], now: float) -> list[int]:
        if not hits:
            return []
        now_ms = int(now * 1000)
        arguments: list[str | int] = [now_ms]
        for hit in hits:
            arguments += [hit.member if hit.member is not None else uuid.uuid4().hex, hit.window_seconds * 1000]
        counts = await self._script(keys=[self._prefix + hit.key for hit in hits], args=arguments)
        return [int(count) for count in counts]

    async def close(self) -> None:
        await self._redis.aclose()


def connect_counters(redis_url: str | None, *, prefix: str) -> Counters:
    return RedisCounters(redis_url, prefix=prefix) if redis_url else MemoryCounters()
