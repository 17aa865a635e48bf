"""The process's copy of the scheduled sales, and the check placement makes against it.

Every order looks up its SKUs here, so the copy lives in memory: an order of a SKU without a
sale pays a dictionary look-up, not a statement. A schedule or cancellation commits, then
`changed()` drops this process's copy and tells every other process through the broker to
drop theirs; a short time-to-live covers a broker that lost the message.

The buyers registered for a sale are read once per process and kept for the sale's life:
registration closes at the start at the latest (domain/sales.py), and they are needed only
from the start on, so the set read then is final. The warm-up before the start
(services/sales/warm.py) reads it ahead, so the first orders do not wait for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker import Broker
from broker.follow import follow
from domain.limits import Identity
from domain.sales import Refusal, Sale, SaleState, admission
from models import SaleEvent, SaleRegistration

SALES_CHANGED = "sales.changed"  # a sale was scheduled or cancelled
SALES_WARM = "sales.warm"  # a sale starts soon: warm this process for it (message: the sale's id)

Key = tuple[int, int]  # (channel id, SKU id)
OFFLINE_TTL_SECONDS = 1.0


def sale_of(row: SaleEvent) -> Sale:
    return Sale(
        row.id, row.channel_id, row.sku_id, row.starts_at, row.ends_at,
        row.registration_opens_at, row.registration_closes_at, row.cancelled_at is not None,
    )


async def current_sales(session: AsyncSession) -> dict[Key, Sale]:
    """The sale that governs each (channel, SKU): the latest to start of those not cancelled."""
    found: dict[Key, Sale] = {}
    for row in await session.scalars(
        select(SaleEvent).where(SaleEvent.cancelled_at.is_(None)).order_by(SaleEvent.starts_at, SaleEvent.id)
    ):
        found[(row.channel_id, row.sku_id)] = sale_of(row)
    return found


async def registered_buyers(session: AsyncSession, sale_id: int) -> frozenset[str]:
    """Every identity registered for the sale, as `Identity.contacts()` names them."""
    found: set[str] = set()
    rows = await session.execute(
        select(SaleRegistration.phone, SaleRegistration.email, SaleRegistration.device, SaleRegistration.account)
        .where(SaleRegistration.sale_id == sale_id)
    )
    for phone, email, device, account in rows:
        found.update(Identity(phone=phone, email=email, device=device, account=account).contacts())
    return frozenset(found)


class SaleBook:
    def __init__(self, broker: Broker, ttl_seconds: float = 10.0) -> None:
        self._broker = broker
        self._ttl = ttl_seconds
        self._sales: dict[Key, Sale] | None = None
        self._loaded_at = 0.0
        self._generation = 0  # bumped by each change: a load begun before it is not kept
        self._loading = asyncio.Lock()
        self._registered: dict[int, frozenset[str]] = {}
        self._changes = asyncio.Event()  # set, and replaced, at each change: live feeds wait on it

    def peek(self) -> dict[Key, Sale] | None:
        """The copy while it is fresh, else None (the caller loads it)."""
        # While the broker is down a change elsewhere would go unheard: the copy is kept a second
        # only, so a schedule made through another process holds here within a second, and a
        # rush of orders still reads the sales once a second, not once each behind one lock.
        ttl = self._ttl if self._broker.live else min(self._ttl, OFFLINE_TTL_SECONDS)
        if self._sales is not None and time.monotonic() - self._loaded_at < ttl:
            return self._sales
        return None

    async def sales(self, session: AsyncSession) -> Mapping[Key, Sale]:
        """The sales, read with the caller's session when the copy is stale; one load at a time."""
        cached = self.peek()
        if cached is not None:
            return cached
        async with self._loading:
            cached = self.peek()
            if cached is not None:
                return cached
            generation = self._generation
            loaded = await current_sales(session)
            if generation == self._generation:
                self._sales, self._loaded_at = loaded, time.monotonic()
                # Buyers of sales no longer in the book (cancelled, superseded) are let go.
                current = {sale.id for sale in loaded.values()}
                self._registered = {pk: kept for pk, kept in self._registered.items() if pk in current}
            return loaded

    async def registered(self, session: AsyncSession, sale: Sale) -> frozenset[str]:
        kept = self._registered.get(sale.id)
        if kept is not None:
            return kept
        async with self._loading:
            kept = self._registered.get(sale.id)
            if kept is None:
                kept = await registered_buyers(session, sale.id)
                self._registered[sale.id] = kept
            return kept

    async def admit(
        self, session: AsyncSession, channel_id: int, sku_ids: Collection[int], who: Identity, now: datetime
    ) -> tuple[int, Refusal] | None:
        """The first SKU of an order its sale refuses now, and why; None when every one may be
        bought (as the buyer's purchase limit then allows). Before the start, or for a buyer
        who did not register, the order is refused here, before anything is reserved."""
        sales = await self.sales(session)
        if not sales:
            return None
        for sku_id in sorted(sku_ids):
            sale = sales.get((channel_id, sku_id))
            if sale is None:
                continue
            needs = sale.needs_registration and sale.state(now) is SaleState.STARTED
            registered = await self.registered(session, sale) if needs else None
            refusal = admission(sale, now, who, registered)
            if refusal is not None:
                return sku_id, refusal
        return None

    def forget(self) -> None:
        self._generation += 1
        self._sales = None
        changes, self._changes = self._changes, asyncio.Event()
        changes.set()

    async def changes(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a change; True if one came."""
        try:
            await asyncio.wait_for(self._changes.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def on_event(self, topic: str) -> None:
        """This process's own change, before it goes out on the broker."""
        if topic == SALES_CHANGED:
            self.forget()

    async def follow(self) -> None:
        """Forget the sales whenever a change is announced, in this process or another."""
        await follow(self._broker, SALES_CHANGED, lambda _: self.forget(), on_lost=self.forget, what="sale changes")

