"""The dashboard for every subscriber of this process: computed once, at most once a second.

A thousand operators' screens must not mean a thousand snapshot queries per order. One
feed per process follows the order and stock topics, recomputes the snapshot when they
speak (and now and then when they do not, since "the last minute" moves on), encodes it
once and hands the same object to every local subscriber. It runs only while someone
watches: the first subscriber starts it, the last one to leave stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from broker import Broker, MessagesLost
from services.analytics.dashboard import Figures, Snapshot, snapshot
from services.core.database import Database, log_failure
from services.core.events import STOCK_CHANGED
from services.orders.events import ORDERS_TOPIC
from services.risk.check import VERDICTS_TOPIC

log = logging.getLogger("quanyi.dashboard")

Encoded = TypeVar("Encoded")
Compute = Callable[[], Awaitable[Snapshot]]

TOPICS = (ORDERS_TOPIC, STOCK_CHANGED, VERDICTS_TOPIC)


class DashboardFeed(Generic[Encoded]):
    """`async with feed.subscribe() as snapshots: async for s in snapshots: ...`

    A subscriber gets the latest snapshot at once, then each changed one; snapshots are
    never pushed closer together than `interval` seconds, however many events arrive.
    """

    def __init__(
        self, compute: Compute, broker: Broker, encode: Callable[[Snapshot], Encoded], *,
        interval: float = 1.0, refresh: float = 5.0,
    ) -> None:
        self._compute = compute
        self._broker = broker
        self._encode = encode
        self._interval = interval
        self._refresh = refresh  # recompute after this long without events
        self._mailboxes: set[_Mailbox[Encoded]] = set()
        self._latest: Encoded | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def subscribers(self) -> int:
        return len(self._mailboxes)

    @property
    def running(self) -> bool:
        return self._task is not None

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[Encoded]]:
        mailbox: _Mailbox[Encoded] = _Mailbox()
        if self._latest is not None:
            mailbox.put(self._latest)
        self._mailboxes.add(mailbox)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dashboard-feed")
        try:
            yield mailbox.messages()
        finally:
            self._mailboxes.discard(mailbox)
            if not self._mailboxes:
                self._stop()

    async def close(self) -> None:
        task = self._stop()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _stop(self) -> asyncio.Task[None] | None:
        # A snapshot kept while nobody watched would be stale for the next subscriber.
        task, self._task, self._latest = self._task, None, None
        if task is not None:
            task.cancel()
        return task

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except MessagesLost:
                log.info("dashboard events may have been missed: computing the snapshot again")
            except Exception as error:
                log_failure(log, "the dashboard feed failed; starting it again", error)
                await asyncio.sleep(self._interval)

    async def _follow(self) -> None:
        changed = asyncio.Event()
        changed.set()  # the first snapshot at once
        async with contextlib.AsyncExitStack() as stack:
            # Subscribed before the first snapshot, so no change falls between the two.
            streams = [await stack.enter_async_context(self._broker.subscribe(topic)) for topic in TOPICS]
            tasks = [asyncio.create_task(_watch(stream, changed)) for stream in streams]
            tasks.append(asyncio.create_task(self._publish(changed)))
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # a failure, reported by _run; MessagesLost: start again at once
                raise RuntimeError("a broker subscription of the dashboard ended")
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _publish(self, changed: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        shown: Figures | None = None
        not_before = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), self._refresh)
            # Events arriving while this waits are folded into the one snapshot that follows.
            await asyncio.sleep(max(not_before - loop.time(), 0))
            changed.clear()
            current = await self._compute()
            not_before = loop.time() + self._interval
            if current.figures == shown:
                continue
            shown = current.figures
            encoded = self._latest = self._encode(current)
            for mailbox in self._mailboxes:
                mailbox.put(encoded)


async def _watch(stream: AsyncIterator[bytes], changed: asyncio.Event) -> None:
    async for _ in stream:
        changed.set()


class _Mailbox(Generic[Encoded]):
    """The latest snapshot only: a slow subscriber skips snapshots rather than queueing them."""

    def __init__(self) -> None:
        self._value: Encoded | None = None
        self._ready = asyncio.Event()

    def put(self, value: Encoded) -> None:
        self._value = value
        self._ready.set()

    async def messages(self) -> AsyncIterator[Encoded]:
        while True:
            await self._ready.wait()
            self._ready.clear()
            yield cast(Encoded, self._value)


def computed_from(db: Database) -> Compute:
    async def compute() -> Snapshot:
        # Fresh reads: a lagging replica would show an order after its buyer saw it.
        async with db.fresh_sessions() as session:
            return await snapshot(session, datetime.now(UTC))

    return compute


# One feed per broker, that is per gateway app in this process. It lives as long as the app.
_feeds: weakref.WeakKeyDictionary[Any, DashboardFeed[Any]] = weakref.WeakKeyDictionary()


def feed_for(db: Database, broker: Broker, encode: Callable[[Snapshot], Encoded]) -> DashboardFeed[Encoded]:
    feed = _feeds.get(broker)
    if feed is None:
        feed = _feeds[broker] = DashboardFeed(computed_from(db), broker, encode)
    return cast(DashboardFeed[Encoded], feed)
