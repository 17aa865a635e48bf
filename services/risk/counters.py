"""Sliding-window counters for the risk check: Redis sorted sets, or this process's memory.

`hit` records each member under its key and returns, per key, the distinct members seen in
the key's window, in one atomic step: of twenty concurrent attempts against a limit of
five, each sees a different count, so exactly five pass.

`tally` does the same for an attempt by an account, and in that same step reads and keeps
when the store first saw the account: the new-account counters (`CounterHit.new_within_seconds`)
record the account only while it is new by that measure. An account the store has no entry
for (never screened, idle longer than FIRST_SEEN_IDLE_SECONDS, or the process restarted) is
taken for new, remembered from now, and reported `unknown`: the caller looks up its first
order and, only if it has one, calls `correct`, which keeps that time instead and takes the
account back out of the counters it is not new for.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.risk import MAX_WINDOW_SECONDS, CounterHit

# An account's first-seen time is kept while it keeps being seen: one idle longer is looked up again.
FIRST_SEEN_IDLE_SECONDS = 90 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Tally:
    counts: list[int]  # per hit, as `hit` returns them
    first_seen: float | None = None  # when the store first saw the account, before this attempt; None: new
    unknown: bool = False  # the store had no entry: taken for new until `correct` says otherwise


class Counters(Protocol):
    async def tally(self, hits: Sequence[CounterHit], now: float, *, account: str | None = None) -> Tally: ...

    async def correct(self, hits: Sequence[CounterHit], now: float, *, account: str, first_order: float) -> list[int]: ...

    async def close(self) -> None: ...


def _new(hit: CounterHit, now: float, first: float | None) -> bool:
    """Whether the hit records: always, or while the account is new by the hit's measure."""
    return hit.new_within_seconds is None or first is None or now - first < hit.new_within_seconds


class MemoryCounters:
    """One process's counters: enough for one gateway process, lost on restart."""

    SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        # key -> member -> last seen; dicts keep insertion order, and a member seen again
        # is moved to the end, so the oldest entry of a key is always its first.
        self._keys: dict[str, dict[str, float]] = {}
        self._first_seen: dict[str, tuple[float, float]] = {}  # account -> (first seen, last seen)
        self._hits = 0

    async def tally(self, hits: Sequence[CounterHit], now: float, *, account: str | None = None) -> Tally:
        # No await between reading and writing: under asyncio this is atomic.
        first: float | None = None
        unknown = False
        if account is not None:
            entry = self._first_seen.get(account)
            if entry is not None and entry[1] > now - FIRST_SEEN_IDLE_SECONDS:
                first = entry[0]
            else:
                unknown = True
            self._first_seen[account] = (first if first is not None else now, now)
        counts = []
        for hit in hits:
            members = self._members(hit, now)
            if _new(hit, now, first):
                member = hit.member if hit.member is not None else uuid.uuid4().hex
                members.pop(member, None)
                members[member] = now
            counts.append(len(members))
        self._hits += 1
        if self._hits % self.SWEEP_EVERY == 0:
            self._sweep(now)
        return Tally(counts, first, unknown)

    async def correct(self, hits: Sequence[CounterHit], now: float, *, account: str, first_order: float) -> list[int]:
        entry = self._first_seen.get(account)
        self._first_seen[account] = (min(first_order, entry[0]) if entry else first_order, now)
        counts = []
        for hit in hits:
            members = self._members(hit, now)
            if hit.member is not None and not _new(hit, now, first_order):
                members.pop(hit.member, None)
            counts.append(len(members))
        return counts

    def _members(self, hit: CounterHit, now: float) -> dict[str, float]:
        members = self._keys.setdefault(hit.key, {})
        self._trim(members, now - hit.window_seconds)
        return members

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
        idle = now - FIRST_SEEN_IDLE_SECONDS
        for account in [account for account, (_, last) in self._first_seen.items() if last <= idle]:
            del self._first_seen[account]

    async def close(self) -> None:
        self._keys.clear()
        self._first_seen.clear()


# KEYS: the counters, then (for an account) its first-seen key, kept as 'first:last seen' in ms.
# ARGV: now in ms, the number of counters, then per counter a member, a window in ms and the
# age in ms below which the account counts as new (-1: always record); then how long an idle
# account's entry is kept. Returns the counts, the first-seen time (-1: new), and 1 when the
# store had no entry (the account taken for new).
_TALLY = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local first = nil
local unknown = 0
local seen = KEYS[n + 1]
if seen then
  local idle = tonumber(ARGV[3 * n + 3])
  local kept = redis.call('GET', seen)
  local at = kept and string.find(kept, ':', 1, true)
  if at and now - tonumber(string.sub(kept, at + 1)) < idle then
    first = string.sub(kept, 1, at - 1)
  else
    unknown = 1
  end
  redis.call('SET', seen, (first or ARGV[1]) .. ':' .. ARGV[1], 'PX', idle)
end
local counts = {}
for i = 1, n do
  local key = KEYS[i]
  local within = tonumber(ARGV[3 * i + 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - tonumber(ARGV[3 * i + 1]))
  if within < 0 or first == nil or now - tonumber(first) < within then
    redis.call('ZADD', key, now, ARGV[3 * i])
    redis.call('PEXPIRE', key, ARGV[3 * i + 1])
  end
  counts[i] = redis.call('ZCARD', key)
end
return {counts, first and tonumber(first) or -1, unknown}
"""

# KEYS: the new-account counters, then the account's first-seen key.
# ARGV: as for _TALLY, then the account's first order in ms and the idle time.
_CORRECT = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local first = tonumber(ARGV[3 * n + 3])
local seen = KEYS[n + 1]
local kept = redis.call('GET', seen)
local at = kept and string.find(kept, ':', 1, true)
if at and tonumber(string.sub(kept, 1, at - 1)) < first then
  first = tonumber(string.sub(kept, 1, at - 1))
end
redis.call('SET', seen, string.format('%d', first) .. ':' .. ARGV[1], 'PX', ARGV[3 * n + 4])
local counts = {}
for i = 1, n do
  local key = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - tonumber(ARGV[3 * i + 1]))
  local within = tonumber(ARGV[3 * i + 2])
  if within >= 0 and now - first >= within then
    redis.call('ZREM', key, ARGV[3 * i])
  end
  counts[i] = redis.call('ZCARD', key)
end
return counts
"""


class RedisCounters:
    """Counters shared by every gateway process: one Lua script trims, adds and counts.

    Each call is one EVALSHA (redis-py loads a script once, on its first NOSCRIPT reply).
    """

    def __init__(self, url: str, *, prefix: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self._prefix = prefix + "risk:"
        self._tally = self._redis.register_script(_TALLY)
        self._correct = self._redis.register_script(_CORRECT)

    async def tally(self, hits: Sequence[CounterHit], now: float, *, account: str | None = None) -> Tally:
        keys, arguments = self._arguments(hits, now)
        if account is not None:
            keys.append(self._prefix + "f:" + account)
            arguments.append(FIRST_SEEN_IDLE_SECONDS * 1000)
        counts, first, unknown = await self._tally(keys=keys, args=arguments)
        return Tally([int(c) for c in counts], None if int(first) < 0 else int(first) / 1000, bool(int(unknown)))

    async def correct(self, hits: Sequence[CounterHit], now: float, *, account: str, first_order: float) -> list[int]:
        keys, arguments = self._arguments(hits, now)
        keys.append(self._prefix + "f:" + account)
        arguments += [int(first_order * 1000), FIRST_SEEN_IDLE_SECONDS * 1000]
        return [int(count) for count in await self._correct(keys=keys, args=arguments)]

    def _arguments(self, hits: Sequence[CounterHit], now: float) -> tuple[list[str], list[str | int]]:
        arguments: list[str | int] = [int(now * 1000), len(hits)]
        for hit in hits:
            within = -1 if hit.new_within_seconds is None else hit.new_within_seconds * 1000
            arguments += [hit.member if hit.member is not None else uuid.uuid4().hex, hit.window_seconds * 1000, within]
        return [self._prefix + hit.key for hit in hits], arguments

    async def close(self) -> None:
        await self._redis.aclose()


def connect_counters(redis_url: str | None, *, prefix: str) -> Counters:
    return RedisCounters(redis_url, prefix=prefix) if redis_url else MemoryCounters()
