"""Callers' cost budgets: leaky buckets in Redis (shared by every gateway process) or in
this process's memory. `draw` takes a request's cost if the bucket holds it, in one atomic
step; `give_back` returns what a request did not use. Redis answers both with one script
call, on Redis's own clock, so gateways on several hosts agree on how much has refilled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from broker.redis_client import redis_client
from domain.access import Allowance
from domain.admission import Throttle, refill
from services.core.fallback import Fallback


class Budgets(Protocol):
    async def draw(self, bucket: str, cost: int, allowance: Allowance) -> Throttle: ...

    async def give_back(self, bucket: str, points: int, allowance: Allowance) -> float: ...

    async def close(self) -> None: ...


class MemoryBudgets:
    """One process's buckets. Full buckets are forgotten, so idle callers cost no memory."""

    SWEEP_EVERY = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float, Allowance]] = {}  # available, at, allowance
        self._draws = 0

    def _level(self, bucket: str, allowance: Allowance, now: float) -> float:
        kept = self._buckets.get(bucket)
        if kept is None:
            return float(allowance.maximum)
        return refill(kept[0], now - kept[1], allowance)

    async def draw(self, bucket: str, cost: int, allowance: Allowance) -> Throttle:
        # No await between reading and writing: under asyncio this is atomic.
        now = self._clock()
        available = self._level(bucket, allowance, now)
        allowed = cost <= available
        if allowed:
            available -= cost
        self._buckets[bucket] = (available, now, allowance)
        self._draws += 1
        if self._draws % self.SWEEP_EVERY == 0:
            self._sweep(now)
        return Throttle(allowed, available, allowance)

    async def give_back(self, bucket: str, points: int, allowance: Allowance) -> float:
        now = self._clock()
        available = min(float(allowance.maximum), self._level(bucket, allowance, now) + max(0, points))
        self._buckets[bucket] = (available, now, allowance)
        return available

    def _sweep(self, now: float) -> None:
        for bucket in [b for b, (a, at, allowance) in self._buckets.items() if refill(a, now - at, allowance) >= allowance.maximum]:
            del self._buckets[bucket]

    async def close(self) -> None:
        self._buckets.clear()


# KEYS[1]: the bucket, a hash of available points ('a') and when ('t', ms on Redis's clock).
# ARGV: the points to take (negative: to give back), the maximum, the restore rate a second.
# Returns 1 if taken (always for a give-back) and the points left, as a string (Lua numbers
# returned to Redis are cut to integers). The key expires once the bucket would be full again.
_DRAW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local cost = tonumber(ARGV[1])
local maximum = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local kept = redis.call('HMGET', KEYS[1], 'a', 't')
local available = maximum
if kept[1] then
  available = math.min(maximum, tonumber(kept[1]) + math.max(0, now - tonumber(kept[2])) * rate / 1000)
end
local taken = 0
if cost <= available then
  available = math.min(maximum, available - cost)
  taken = 1
end
redis.call('HSET', KEYS[1], 'a', string.format('%.3f', available), 't', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((maximum - available) * 1000 / rate) + 1000)
return {taken, string.format('%.3f', available)}
"""


class RedisBudgets:
    def __init__(self, url: str, *, prefix: str) -> None:
        self._redis = redis_client(url)
        self._prefix = prefix + "budget:"
        self._draw = self._redis.register_script(_DRAW)

    async def draw(self, bucket: str, cost: int, allowance: Allowance) -> Throttle:
        taken, available = await self._draw(
            keys=[self._prefix + bucket], args=[cost, allowance.maximum, allowance.restore_rate]
        )
        return Throttle(bool(int(taken)), float(available), allowance)

    async def give_back(self, bucket: str, points: int, allowance: Allowance) -> float:
        _, available = await self._draw(
            keys=[self._prefix + bucket], args=[-max(0, points), allowance.maximum, allowance.restore_rate]
        )
        return float(available)

    async def close(self) -> None:
        await self._redis.aclose()


class FallbackBudgets:
    """Redis's buckets while it answers, this process's own while it does not
    (services/core/fallback.py): callers stay throttled, per process, through an outage."""

    def __init__(self, shared: Budgets, local: Budgets) -> None:
        self._shared, self._local = shared, local
        self._fallback = Fallback("budgets")

    async def draw(self, bucket: str, cost: int, allowance: Allowance) -> Throttle:
        return await self._fallback.call(lambda: self._shared.draw(bucket, cost, allowance),
                                         lambda: self._local.draw(bucket, cost, allowance))

    async def give_back(self, bucket: str, points: int, allowance: Allowance) -> float:
        return await self._fallback.call(lambda: self._shared.give_back(bucket, points, allowance),
                                         lambda: self._local.give_back(bucket, points, allowance))

    async def close(self) -> None:
        await self._shared.close()
        await self._local.close()


def connect_budgets(redis_url: str | None, *, prefix: str) -> Budgets:
    if not redis_url:
        return MemoryBudgets()
    return FallbackBudgets(RedisBudgets(redis_url, prefix=prefix), MemoryBudgets())
