"""The process's live sale countdowns: one clock per followed sale, shared by its subscribers.

A sale's moments (registration opening and closing, the start, the end) are known from its
schedule, so each process keeps its own clock rather than waiting for a message: every
subscriber hears "started" at the start by this host's clock, however many processes serve
them. Schedule changes come through the sale book, which the broker keeps current
(services/sales/book.py): a cancellation or a new schedule reaches the clock at once.

Before the start the clock pushes the seconds left: every second in the last minute, less
often before (domain/sales.py). Ten thousand subscribers of one sale cost one update object
per tick, not ten thousand. A stream ends after the sale's last moment: its end, or its
start when it has none, or its cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from domain.sales import Sale, SaleState, tick_seconds
from services.core.database import Database
from services.sales.book import Key, SaleBook

log = logging.getLogger("quanyi.sale_feed")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SaleMoment:
    """A sale as it stands at `at`."""

    channel: str
    sale: Sale
    state: SaleState
    seconds_to_start: int
    at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


class SaleFeed(Generic[T]):
    def __init__(
        self, db: Database, book: SaleBook, present: Callable[[SaleMoment], T], *,
        clock: Callable[[], datetime] = _now, inbox_size: int = 16,
    ) -> None:
        self._db, self._book, self._present, self._clock = db, book, present, clock
        self._inbox_size = inbox_size
        self._clocks: dict[Key, _Clock[T]] = {}

    @contextlib.asynccontextmanager
    async def follow(self, channel_id: int, channel: str, sku_id: int) -> AsyncIterator[AsyncIterator[T]]:
        """The sale's moments, the current one first, until the sale's last or the block ends."""
        key = (channel_id, sku_id)
        clock = self._clocks.get(key)
        if clock is None or clock.task.done():
            clock = self._clocks[key] = _Clock(self, key, channel)
        inbox: _Inbox[T] = _Inbox(self._inbox_size)
        clock.add(inbox)
        try:
            yield inbox
        finally:
            clock.remove(inbox)
            if not clock.inboxes:
                clock.task.cancel()
                if self._clocks.get(key) is clock:
                    del self._clocks[key]

    async def close(self) -> None:
        for clock in list(self._clocks.values()):
            clock.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await clock.task
        self._clocks.clear()

    async def _sale(self, key: Key) -> Sale | None:
        sales = self._book.peek()
        if sales is None:
            async with self._db.fresh_sessions() as session:
                sales = dict(await self._book.sales(session))
        return sales.get(key)


class _Clock(Generic[T]):
    def __init__(self, feed: SaleFeed[T], key: Key, channel: str) -> None:
        self.feed, self.key, self.channel = feed, key, channel
        self.inboxes: set[_Inbox[T]] = set()
        self.latest: T | None = None
        self.task = asyncio.create_task(self._run(), name=f"sale-clock-{key[0]}-{key[1]}")

    def add(self, inbox: _Inbox[T]) -> None:
        self.inboxes.add(inbox)
        if self.latest is not None:
            inbox.put(self.latest)
        if self.task.done():  # the sale's last moment has passed: nothing more will come
            inbox.close()

    def remove(self, inbox: _Inbox[T]) -> None:
        self.inboxes.discard(inbox)

    def _push(self, moment: SaleMoment) -> None:
        self.latest = self.feed._present(moment)
        for inbox in list(self.inboxes):
            inbox.put(self.latest)

    async def _run(self) -> None:
        last: tuple[SaleState, int] | None = None
        known: Sale | None = None
        try:
            while True:
                try:
                    sale = await self.feed._sale(self.key)
                except Exception:
                    log.exception("could not read the sale of %s; trying again", self.key)
                    await asyncio.sleep(1.0)
                    continue
                now = self.feed._clock()
                if sale is None and known is not None and known.id is not None:
                    # Gone from the book: cancelled (a sale that ended stays in it).
                    sale = Sale(known.id, known.channel_id, known.sku_id, known.starts_at, known.ends_at,
                                known.registration_opens_at, known.registration_closes_at, cancelled=True)
                if sale is not None:
                    if known is not None and sale.id != known.id:
                        last = None  # another sale of the SKU: its own countdown from here
                    known = sale
                    state, seconds = sale.state(now), sale.seconds_to_start(now)
                    if (state, seconds) != last:
                        last = (state, seconds)
                        self._push(SaleMoment(self.channel, sale, state, seconds, now))
                    if state.final or (state is SaleState.STARTED and sale.ends_at is None):
                        return
                wait = _next_moment(sale, now) if sale is not None else None
                timeout = 60.0 if wait is None else max(0.0, (wait - self.feed._clock()).total_seconds()) + 0.001
                await self.feed._book.changes(timeout)
        finally:
            for inbox in list(self.inboxes):
                inbox.close()


def _next_moment(sale: Sale, now: datetime) -> datetime | None:
    """When the sale next looks different: the next countdown tick, a registration edge, its end."""
    seconds = sale.seconds_to_start(now)
    candidates = []
    if seconds > 0:
        step = tick_seconds(seconds)
        candidates.append(sale.starts_at - timedelta(seconds=((seconds - 1) // step) * step))
    elif sale.ends_at is not None:
        candidates.append(sale.ends_at)
    for edge in (sale.registration_opens_at, sale.registration_closes_at):
        if edge is not None and edge > now:
            candidates.append(edge)
    return min(candidates) if candidates else None


class _Inbox(Generic[T]):
    """One subscriber's bounded inbox: a slow one loses its oldest moments, never the newest."""

    _CLOSED = object()

    def __init__(self, size: int) -> None:
        self._items: deque[object] = deque(maxlen=size)
        self._ready = asyncio.Event()

    def put(self, item: T) -> None:
        self._items.append(item)
        self._ready.set()

    def close(self) -> None:
        self._items.append(self._CLOSED)
        self._ready.set()

    def __aiter__(self) -> _Inbox[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if item is self._CLOSED:
            self._items.appendleft(item)
            raise StopAsyncIteration
        return item  # type: ignore[return-value]
