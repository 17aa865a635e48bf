"""Sliding-window counters for the risk check: Redis sorted sets, or this process's memory.

`hit` records each member under its key and returns, per key, the distinct members seen in
the key's window, in one atomic step: of twenty concurrent attempts against a limit of
five, each sees a different count, so exactly five pass.

`tally` does the same for an attempt by an account, and in that same step reads and keeps
when the store first saw the account: the new-account counters (`CounterHit.new_within_seconds`)
are recorded only for an account new by that measure. An account the store has no entry for
(never screened, or idle longer than FIRST_SEEN_IDLE_SECONDS, or a process restarted) is
reported `unknown` with nothing conditional recorded; the caller looks its first order up and
tallies those counters again with that `seed`.
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
    unknown: bool = False  # no entry and no seed: the conditional hits were not recorded


class Unseeded:
    """No seed given: an account without an entry is reported unknown."""


UNSEEDED = Unseeded()


class Counters(Protocol):
    async def hit(self, hits: Sequence[CounterHit], now: float) -> list[int]: ...

    async def tally(
        self, hits: Sequence[CounterHit], now: float, *, account: str | None = None,
        seed: float | None | Unseeded = UNSEEDED,
    ) -> Tally: ...

    async def close(self) -> None: ...


class MemoryCounters:
    """One process's counters: enough for one gateway process, lost on restart."""

    SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        # key -> member -> last seen; dicts keep insertion order, and a member seen again
        # is moved to the end, so the oldest entry of a key is always its first.
        self._keys: dict[str, dict[str, float]] = {}
        self._first_seen: dict[str, tuple[float, float]] = {}  # account -> (first seen, last seen)
        self._hits = 0

    async def hit(self, hits: Sequence[CounterHit], now: float) -> list[int]:
        return (await self.tally(hits, now)).counts

    async def tally(
        self, hits: Sequence[CounterHit], now: float, *, account: str | None = None,
        seed: float | None | Unseeded = UNSEEDED,
    ) -> Tally:
        # No await between reading and writing: under asyncio this is atomic.
        first: float | None = None
        unknown = False
        if account is not None:
            entry = self._first_seen.get(account)
            if entry is not None and entry[1] > now - FIRST_SEEN_IDLE_SECONDS:
                first = entry[0]
            elif isinstance(seed, Unseeded):
                unknown = True
            else:
                first = seed
            if not unknown:
                self._first_seen[account] = (first if first is not None else now, now)
        counts = []
        for hit in hits:
            members = self._keys.setdefault(hit.key, {})
            self._trim(members, now - hit.window_seconds)
            if _records(hit, now, first, unknown):
                member = hit.member if hit.member is not None else uuid.uuid4().hex
                members.pop(member, None)
                members[member] = now
            counts.append(len(members))
        self._hits += 1
        if self._hits % self.SWEEP_EVERY == 0:
            self._sweep(now)
        return Tally(counts, first, unknown)

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


def _records(hit: CounterHit, now: float, first: float | None, unknown: bool) -> bool:
    if hit.new_within_seconds is None:
        return True
    return not unknown and (first is None or now - first < hit.new_within_seconds)


# KEYS: the counters, then (for an account) the account's first-seen key.
# ARGV: now in ms, the number of counters, per counter a member, a window in ms and the age in
# ms below which the account counts as new (-1: always record); then, for an account, the
# seed ('' none, 'new' never seen, else its first order in ms) and how long an idle entry is kept.
_TALLY = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local first = nil
local unknown = false
local seen = KEYS[n + 1]
if seen then
  -- kept as 'first:last seen' in ms: an entry idle too long counts as none
  local kept = redis.call('GET', seen)
  local seed = ARGV[3 * n + 3]
  local idle = tonumber(ARGV[3 * n + 4])
  local at = kept and string.find(kept, ':', 1, true)
  if at and now - tonumber(string.sub(kept, at + 1)) < idle then
    first = string.sub(kept, 1, at - 1)
  elseif seed == '' then
    unknown = true
  elseif seed ~= 'new' then
    first = seed
  end
  if not unknown then
    redis.call('SET', seen, (first or ARGV[1]) .. ':' .. ARGV[1], 'PX', idle)
  end
end
local counts = {}
for i = 1, n do
  local key = KEYS[i]
  local window = tonumber(ARGV[3 * i + 1])
  local within = tonumber(ARGV[3 * i + 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if within < 0 or (not unknown and (first == nil or now - tonumber(first) < within)) then
    redis.call('ZADD', key, now, ARGV[3 * i])
    redis.call('PEXPIRE', key, window)
  end
  counts[i] = redis.call('ZCARD', key)
end
return {counts, first and tonumber(first) or -1, unknown and 1 or 0}
"""


class RedisCounters:
    """Counters shared by every gateway process: one Lua script trims, adds and counts."""

    def __init__(self, url: str, *, prefix: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self._prefix = prefix + "risk:"
        self._script = self._redis.register_script(_TALLY)

    async def hit(self, hits: Sequence[CounterHit], now: float) -> list[int]:
        if not hits:
            return []
        return (await self.tally(hits, now)).counts

    async def tally(
        self, hits: Sequence[CounterHit], now: float, *, account: str | None = None,
        seed: float | None | Unseeded = UNSEEDED,
    ) -> Tally:
        """One EVALSHA per call (redis-py loads the script once, on the first NOSCRIPT)."""
        now_ms = int(now * 1000)
        keys = [self._prefix + hit.key for hit in hits]
        arguments: list[str | int] = [now_ms, len(hits)]
        for hit in hits:
            within = -1 if hit.new_within_seconds is None else hit.new_within_seconds * 1000
            arguments += [hit.member if hit.member is not None else uuid.uuid4().hex, hit.window_seconds * 1000, within]
        if account is not None:
            keys.append(self._prefix + "f:" + account)
            if isinstance(seed, Unseeded):
                arguments.append("")
            else:
                arguments.append("new" if seed is None else int(seed * 1000))
            arguments.append(FIRST_SEEN_IDLE_SECONDS * 1000)
        counts, first, unknown = await self._script(keys=keys, args=arguments)
        return Tally([int(count) for count in counts], None if int(first) < 0 else int(first) / 1000, bool(int(unknown)))

    async def close(self) -> None:
        await self._redis.aclose()


def connect_counters(redis_url: str | None, *, prefix: str) -> Counters:
    return RedisCounters(redis_url, prefix=prefix) if redis_url else MemoryCounters()
