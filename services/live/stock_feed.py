"""The process's live stock feed: one broker subscription, figures computed once per change.

Every stock subscriber in a process follows this one feed. For each stock event the feed
reads, in one session, the figures of every channel that has subscribers here, for the SKUs
the event moved (and the bundles holding them) that one of them wants, and hands the same
update objects to each subscriber of that channel whose SKU filter lets them through. Two
thousand subscribers of a channel cost one computation per change, not two thousand.

When stock events may have been missed (the broker lost its connection, or has it again),
every subscriber gets the current figures of all it follows, as if each SKU had changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

import orjson

from broker import Broker, MessagesLost
from domain.catalog import StockFigures
from services.core.database import Database, log_failure
from services.core.events import STOCK_CHANGED
from services.live import stock as live_stock

log = logging.getLogger("quanyi.stock_feed")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ChannelStock:
    """What a channel may sell of one SKU after the change made at `at`."""

    channel: str
    sku_id: int
    figures: StockFigures
    at: datetime


class StockFeed(Generic[T]):
    """Live stock of every channel followed in this process.

    `present` turns each computed figure into what subscribers receive; it runs once per
    (change, channel, SKU), and every subscriber gets that same object. Each subscriber
    has a bounded inbox: one too slow to keep up loses its oldest updates, so a stalled
    client never grows the process's memory.
    """

    def __init__(
        self, db: Database, broker: Broker, present: Callable[[ChannelStock], T], *, inbox_size: int = 64
    ) -> None:
        self._db = db
        self._broker = broker
        self._present = present
        self._inbox_size = inbox_size
        self._channels: dict[int, _Channel[T]] = {}
        # SKUs changed since the last computation: a burst of changes is read once.
        self._pending: set[int] = set()
        self._pending_at: datetime | None = None
        self._resync = False  # events may have been missed: recompute everything followed
        self._wake = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def follow(
        self, channel_id: int, channel: str, sku_ids: Collection[int] | None = None
    ) -> AsyncIterator[AsyncIterator[T]]:
        """Updates of the channel's stock (of `sku_ids` only, when given) until the block ends."""
        follower: _Follower[T] = _Follower(
            frozenset(sku_ids) if sku_ids is not None else None, self._inbox_size
        )
        followed = self._channels.get(channel_id)
        if followed is None:
            followed = self._channels[channel_id] = _Channel(channel)
        followed.add(follower)
        self._start()
        try:
            yield follower
        finally:
            followed.remove(follower)
            if not followed.followers and self._channels.get(channel_id) is followed:
                del self._channels[channel_id]

    def followers(self) -> int:
        return sum(len(followed.followers) for followed in self._channels.values())

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    def _start(self) -> None:
        # Started by the first follower, then kept for the process's life: an idle feed
        # costs one broker subscription and no queries.
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._run(), name="stock-feed")

    async def _run(self) -> None:
        worker = asyncio.create_task(self._work(), name="stock-feed-figures")
        try:
            while True:
                try:
                    async with self._broker.subscribe(STOCK_CHANGED) as messages:
                        async for message in messages:
                            self._note(message)
                except asyncio.CancelledError:
                    raise
                except MessagesLost:
                    log.info("stock events may have been missed: sending subscribers the current figures")
                    self._resync = True
                    self._wake.set()
                except Exception:
                    log.exception("the stock feed lost its broker subscription; subscribing again")
                    await asyncio.sleep(1.0)
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    def _note(self, message: bytes) -> None:
        try:
            change = orjson.loads(message)
            skus = {int(sku_id) for sku_id in change.get("skus", ())}
            at = datetime.fromisoformat(change["at"]) if "at" in change else datetime.now(UTC)
        except (ValueError, TypeError, AttributeError):
            log.warning("ignored a malformed stock event: %r", message[:200])
            return
        self._pending |= skus
        # Figures read after a burst reflect all of it: they carry its latest change's time.
        self._pending_at = at if self._pending_at is None else max(self._pending_at, at)
        self._wake.set()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            changed, at = self._pending, self._pending_at or datetime.now(UTC)
            self._pending, self._pending_at = set(), None
            resync, self._resync = self._resync, False
            try:
                if resync:
                    changed |= await self._followed()
                    at = datetime.now(UTC)
                await self._publish(changed, at)
            except Exception as error:
                log_failure(log, f"could not compute live stock for SKUs {sorted(changed)[:20]}", error)

    async def _followed(self) -> set[int]:
        """Every SKU some subscriber here follows."""
        followed: set[int] = set()
        for channel in self._channels.values():
            if channel.everything:
                async with self._db.fresh_sessions() as session:
                    return await live_stock.every_sku(session)
            followed |= channel.skus()
        return followed

    async def _publish(self, changed: set[int], at: datetime) -> None:
        if not self._channels or not changed:
            return
        # A fresh session (never a lagging replica): subscribers see the change just committed.
        async with self._db.fresh_sessions() as session:
            moved = await live_stock.affected(session, changed)
            wanted = {
                channel_id: skus
                for channel_id, followed in self._channels.items()
                if (skus := followed.wanted_of(moved))
            }
            if not wanted:
                return
            figures = await live_stock.figures_by_channel(session, wanted)
        dropped = 0
        for channel_id, by_sku in figures.items():
            followed = self._channels.get(channel_id)
            if followed is None:  # its last subscriber left while the figures were read
                continue
            updates = [
                (sku_id, self._present(ChannelStock(followed.code, sku_id, by_sku[sku_id], at)))
                for sku_id in sorted(by_sku)
            ]
            for follower in list(followed.followers):
                for sku_id, update in updates:
                    if follower.wanted is None or sku_id in follower.wanted:
                        dropped += follower.put(update)
        if dropped:
            log.warning("dropped %d stock updates of subscribers too slow to keep up", dropped)


class _Channel(Generic[T]):
    """The followers of one channel, and what SKUs they want between them."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.followers: set[_Follower[T]] = set()
        self._everything = 0  # followers without a SKU filter
        self._wanted: Counter[int] = Counter()

    def add(self, follower: _Follower[T]) -> None:
        self.followers.add(follower)
        if follower.wanted is None:
            self._everything += 1
        else:
            self._wanted.update(follower.wanted)

    def remove(self, follower: _Follower[T]) -> None:
        if follower not in self.followers:
            return
        self.followers.discard(follower)
        if follower.wanted is None:
            self._everything -= 1
        else:
            self._wanted.subtract(follower.wanted)
            for sku_id in follower.wanted:
                if self._wanted[sku_id] <= 0:
                    del self._wanted[sku_id]

    @property
    def everything(self) -> bool:
        return self._everything > 0

    def skus(self) -> set[int]:
        return set(self._wanted)

    def wanted_of(self, moved: set[int]) -> set[int]:
        if self._everything:
            return set(moved)
        return {sku_id for sku_id in moved if sku_id in self._wanted}


class _Follower(Generic[T]):
    """One subscriber's bounded inbox, read as an async iterator."""

    __slots__ = ("_items", "_loop", "_waiter", "wanted")

    def __init__(self, wanted: frozenset[int] | None, size: int) -> None:
        self.wanted = wanted
        self._items: deque[T] = deque(maxlen=size)
        # Kept: asking asyncio for the running loop checks the process id, a system call,
        # and a feed may wake thousands of followers per change.
        self._loop = asyncio.get_running_loop()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: T) -> bool:
        """Queue an update; True when the inbox was full and its oldest update went."""
        full = len(self._items) == self._items.maxlen
        self._items.append(item)  # a full deque drops from the other end
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return full

    def __aiter__(self) -> _Follower[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()
