"""Which channels have a marketplace, kept per process, so that an order of any other
channel costs nothing to ask.

Every order's move to DELIVERED asks it (services/orders/events.py), and so does the
PostgreSQL fulfilment path on every order; connections are few and change rarely. So it is
read again in the background (`follow`: at start, then every `TTL_SECONDS`, whatever was
missed), never on an order's path once read, and forgotten at once in the process that
changed a connection (`forget`) and through the broker (`marketplaces.changed`) in the others:
the next order to ask then reads it. A stale answer errs safe both ways: a channel connected meanwhile has no imported
trades yet, and a channel disconnected meanwhile matches no record that awaits a report.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker import Broker
from broker.follow import follow
from models import MarketplaceConnection
from services.core.database import Database

TOPIC = "marketplaces.changed"
TTL_SECONDS = 10.0


class Connected:
    def __init__(self, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl, self._clock = ttl, clock
        self._channels: frozenset[int] | None = None
        self._loaded_at = 0.0
        self._version = 0

    def forget(self) -> None:
        self._channels = None
        self._version += 1

    def _fresh(self) -> frozenset[int] | None:
        return self._channels

    async def channels(self, session: AsyncSession) -> frozenset[int]:
        found = self._fresh()
        if found is None:
            version = self._version
            # Disabled connections count: their imported trades are still reported.
            found = frozenset(await session.scalars(select(MarketplaceConnection.channel_id)))
            if version == self._version:  # not forgotten while it was read
                self._channels, self._loaded_at = found, self._clock()
        return found

    def none(self) -> bool | None:
        """Whether no channel has a marketplace, as last read (None: not read since it was
        forgotten). A path written without the delivery reports in it asks this first."""
        found = self._fresh()
        return None if found is None else not found

    async def refresh(self, db: Database) -> None:
        """Read the connected channels again (in a session of its own); the last answer
        stands while this one is read."""
        version = self._version
        async with db.fresh_sessions() as session:
            found = frozenset(await session.scalars(select(MarketplaceConnection.channel_id)))
        if version == self._version:  # not forgotten while it was read
            self._channels, self._loaded_at = found, self._clock()

    async def follow(self, broker: Broker, db: Database) -> None:
        async def every_while() -> None:
            while True:
                with contextlib.suppress(Exception):  # the database away: the next round tries again
                    await self.refresh(db)
                await asyncio.sleep(self._ttl)

        refreshing = asyncio.create_task(every_while())
        try:
            await follow(broker, TOPIC, lambda _: self.forget(), on_lost=self.forget,
                         what="marketplace connection changes")
        finally:
            refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refreshing


# One per process: order transitions deep in the services read it.
CONNECTED = Connected()
