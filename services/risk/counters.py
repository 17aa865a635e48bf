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

An `attempt` (the channel and idempotency key of the order attempt) makes both idempotent: the
first call for an attempt records, and remembers per counter what it counted and what it knew
of the account; a later call for the same attempt (a retry, concurrent or not, in any process)
records nothing and gets those answers back, so it gets the verdict of its first try. Those
answers are kept for the attempt's longest window, at most ATTEMPT_KEPT_SECONDS; a remembered
count holds for its own counter's window. An attempt's entry in a counter that counts attempts
is the attempt itself, added only if absent: a retry after its answers were let go is scored
on the counts as they stand then, and still adds nothing to them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from broker.redis_client import redis_client
from domain.risk import MAX_WINDOW_SECONDS, CounterHit
from services.core.fallback import Fallback
from services.risk.counter_scripts import CORRECT, TALLY

# An account's first-seen time is kept while it keeps being seen: one idle longer is looked up again.
FIRST_SEEN_IDLE_SECONDS = 90 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Tally:
    counts: list[int]  # per hit, as `hit` returns them
    first_seen: float | None = None  # when the store first saw the account, before this attempt; None: new
    unknown: bool = False  # the store had no entry: taken for new until `correct` says otherwise


class Counters(Protocol):
    async def tally(
        self, hits: Sequence[CounterHit], now: float, *, account: str | None = None, attempt: str | None = None
    ) -> Tally: ...

    async def correct(
        self, hits: Sequence[CounterHit], now: float, *, account: str, first_order: float, attempt: str | None = None
    ) -> list[int]: ...

    async def close(self) -> None: ...


def _new(hit: CounterHit, now: float, first: float | None) -> bool:
    """Whether the hit records: always, or while the account is new by the hit's measure."""
    return hit.new_within_seconds is None or first is None or now - first < hit.new_within_seconds


# How long an attempt's answers are kept: its longest window, within these bounds. Retries come
# within minutes; the attempt's own entry keeps it from being counted twice after that.
MIN_ATTEMPT_SECONDS = 60
ATTEMPT_KEPT_SECONDS = 24 * 3600


def _kept_for(hits: Sequence[CounterHit]) -> int:
    longest = max((hit.window_seconds for hit in hits), default=0)
    return min(max(longest, MIN_ATTEMPT_SECONDS), ATTEMPT_KEPT_SECONDS)


def _member(hit: CounterHit, attempt: str | None) -> tuple[str, bool]:
    """What the hit records, and whether only if absent: an attempt is one entry, kept from its first time."""
    if hit.member is not None:
        return hit.member, False  # an account: its latest time counts
    return ("t:" + attempt, True) if attempt is not None else (uuid.uuid4().hex, False)


@dataclass
class _Attempt:
    """What the first try of an attempt counted and knew, for its retries."""

    until: float
    counts: dict[str, tuple[int, float]] = field(default_factory=dict)  # counter key -> (count, when counted)
    # account -> (first seen, unknown, settled): settled once `correct` has run for it
    accounts: dict[str, tuple[float | None, bool, bool]] = field(default_factory=dict)

    def count(self, hit: CounterHit, now: float) -> int | None:
        kept = self.counts.get(hit.key)
        return kept[0] if kept is not None and now - kept[1] < hit.window_seconds else None


class MemoryCounters:
    """One process's counters: enough for one gateway process, lost on restart."""

    SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        # key -> member -> last seen; dicts keep insertion order, and a member seen again
        # is moved to the end, so the oldest entry of a key is always its first.
        self._keys: dict[str, dict[str, float]] = {}
        self._first_seen: dict[str, tuple[float, float]] = {}  # account -> (first seen, last seen)
        self._attempts: dict[str, _Attempt] = {}
        self._hits = 0

    async def tally(
        self, hits: Sequence[CounterHit], now: float, *, account: str | None = None, attempt: str | None = None
    ) -> Tally:
        # No await between reading and writing: under asyncio this is atomic.
        memo = self._attempt(attempt, hits, now)
        first: float | None = None
        unknown = False
        if account is not None:
            known = memo.accounts.get(account) if memo else None
            if known is not None:
                first, unknown, _ = known
            else:
                entry = self._first_seen.get(account)
                if entry is not None and entry[1] > now - FIRST_SEEN_IDLE_SECONDS:
                    first = entry[0]
                else:
                    unknown = True
                self._first_seen[account] = (first if first is not None else now, now)
                if memo is not None:
                    memo.accounts[account] = (first, unknown, False)
        counts = []
        for hit in hits:
            members = self._members(hit, now)
            count = memo.count(hit, now) if memo else None
            if count is None:
                member, if_absent = _member(hit, attempt)
                if _new(hit, now, first) and not (if_absent and member in members):
                    members.pop(member, None)
                    members[member] = now
                count = len(members)
                if memo is not None:
                    memo.counts[hit.key] = (count, now)
            counts.append(count)
        self._hits += 1
        if self._hits % self.SWEEP_EVERY == 0:
            self._sweep(now)
        return Tally(counts, first, unknown)

    async def correct(
        self, hits: Sequence[CounterHit], now: float, *, account: str, first_order: float, attempt: str | None = None
    ) -> list[int]:
        memo = self._attempt(attempt, hits, now)
        if memo is not None and memo.accounts.get(account, (None, True, False))[2]:
            # Settled by an earlier call for this attempt: its counts stand.
            kept = [memo.count(hit, now) for hit in hits]
            return [len(self._members(hit, now)) if count is None else count for hit, count in zip(hits, kept, strict=True)]
        entry = self._first_seen.get(account)
        self._first_seen[account] = (min(first_order, entry[0]) if entry else first_order, now)
        counts = []
        for hit in hits:
            members = self._members(hit, now)
            if hit.member is not None and not _new(hit, now, first_order):
                members.pop(hit.member, None)
            counts.append(len(members))
            if memo is not None:
                memo.counts[hit.key] = (len(members), now)
        if memo is not None:
            memo.accounts[account] = (first_order, False, True)
        return counts

    def _attempt(self, attempt: str | None, hits: Sequence[CounterHit], now: float) -> _Attempt | None:
        if attempt is None:
            return None
        memo = self._attempts.get(attempt)
        if memo is None or memo.until <= now:
            memo = self._attempts[attempt] = _Attempt(now)
        memo.until = max(memo.until, now + _kept_for(hits))
        return memo

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
        for attempt in [attempt for attempt, memo in self._attempts.items() if memo.until <= now]:
            del self._attempts[attempt]

    async def close(self) -> None:
        self._keys.clear()
        self._first_seen.clear()
        self._attempts.clear()


class RedisCounters:
    """Counters shared by every gateway process: one Lua script trims, adds and counts.

    Each call is one EVALSHA (redis-py loads a script once, on its first NOSCRIPT reply).
    """

    def __init__(self, url: str, *, prefix: str) -> None:
        self._redis = redis_client(url)
        self._prefix = prefix + "risk:"
        self._tally = self._redis.register_script(TALLY)
        self._correct = self._redis.register_script(CORRECT)

    async def tally(
        self, hits: Sequence[CounterHit], now: float, *, account: str | None = None, attempt: str | None = None
    ) -> Tally:
        idle = -1 if account is None else FIRST_SEEN_IDLE_SECONDS * 1000
        keys, arguments = self._arguments(hits, now, [idle, _kept_ms(hits, attempt)], attempt)
        if account is not None:
            keys.append(self._prefix + "f:" + account)
        if attempt is not None:
            keys.append(self._prefix + "t:" + attempt)
        counts, first, unknown = await self._tally(keys=keys, args=arguments)
        return Tally([int(c) for c in counts], None if int(first) < 0 else int(first) / 1000, bool(int(unknown)))

    async def correct(
        self, hits: Sequence[CounterHit], now: float, *, account: str, first_order: float, attempt: str | None = None
    ) -> list[int]:
        head = [int(first_order * 1000), FIRST_SEEN_IDLE_SECONDS * 1000, _kept_ms(hits, attempt)]
        keys, arguments = self._arguments(hits, now, head, attempt)
        keys.append(self._prefix + "f:" + account)
        if attempt is not None:
            keys.append(self._prefix + "t:" + attempt)
        return [int(count) for count in await self._correct(keys=keys, args=arguments)]

    def _arguments(
        self, hits: Sequence[CounterHit], now: float, head: list[int], attempt: str | None
    ) -> tuple[list[str], list[str | int]]:
        arguments: list[str | int] = [int(now * 1000), len(hits), *head]
        for hit in hits:
            within = -1 if hit.new_within_seconds is None else hit.new_within_seconds * 1000
            member, if_absent = _member(hit, attempt)
            arguments += [member, hit.window_seconds * 1000, within, int(if_absent)]
        return [self._prefix + hit.key for hit in hits], arguments

    async def close(self) -> None:
        await self._redis.aclose()


def _kept_ms(hits: Sequence[CounterHit], attempt: str | None) -> int:
    return 0 if attempt is None else _kept_for(hits) * 1000


class FallbackCounters:
    """Redis's counters while it answers, this process's own while it does not
    (services/core/fallback.py): velocity rules keep counting, per process, through an outage."""

    def __init__(self, shared: Counters, local: Counters) -> None:
        self._shared, self._local = shared, local
        self._fallback = Fallback("risk counters")

    async def tally(
        self, hits: Sequence[CounterHit], now: float, *, account: str | None = None, attempt: str | None = None
    ) -> Tally:
        return await self._fallback.call(
            lambda: self._shared.tally(hits, now, account=account, attempt=attempt),
            lambda: self._local.tally(hits, now, account=account, attempt=attempt),
        )

    async def correct(
        self, hits: Sequence[CounterHit], now: float, *, account: str, first_order: float, attempt: str | None = None
    ) -> list[int]:
        return await self._fallback.call(
            lambda: self._shared.correct(hits, now, account=account, first_order=first_order, attempt=attempt),
            lambda: self._local.correct(hits, now, account=account, first_order=first_order, attempt=attempt),
        )

    async def close(self) -> None:
        await self._shared.close()
        await self._local.close()


def connect_counters(redis_url: str | None, *, prefix: str) -> Counters:
    if not redis_url:
        return MemoryCounters()
    return FallbackCounters(RedisCounters(redis_url, prefix=prefix), MemoryCounters())
