"""Per-request DataLoaders. Each batch opens its own short session on the read side.

Catalog loaders read lag-tolerant (`db.read_sessions`: the replica while it is current, see
services/core/replica.py); order loaders read the primary, so a buyer sees the order it has
just placed. An operation that writes or reads an order swaps its loaders for ones that read
the primary throughout (`Context.read_from_primary`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import cached_property, partial
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from domain.catalog import StockFigures
from domain.limits import HoldLimit, PurchaseLimit
from models import (
    Brand,
    Category,
    Channel,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    Refund,
    RiskVerdict,
    Sku,
    SkuSupplier,
    Supplier,
)
from services.catalog import reads as catalog
from services.core.database import Database, unreachable
from services.core.replica import on_replica
from services.draws import reads as draws
from services.draws.reads import BoxView
from services.inventory import channel_stock, quotas, stock
from services.orders import limits
from services.orders import reads as order_reads
from services.payments import refunds
from services.pricing import prices as pricing
from services.risk import reads as risk_reads

K = TypeVar("K")
V = TypeVar("V")


def _batched(
    db: Database,
    fetch: Callable[[AsyncSession, Sequence[K]], Awaitable[dict[K, V]]],
    missing: Callable[[], V],
    *,
    primary: bool = False,
) -> DataLoader[K, V]:
    sessions = db.fresh_sessions if primary else db.read_sessions

    async def load(keys: Sequence[K]) -> list[V]:
        async with sessions() as session:
            try:
                found = await fetch(session, keys)
            except Exception as error:
                if not (on_replica(session) and unreachable(error)):
                    raise
                found = None  # the replica went away mid-read: the primary answers instead
        if found is None:
            async with db.fresh_sessions() as session:
                found = await fetch(session, keys)
        return [found[key] if key in found else missing() for key in keys]

    return DataLoader(load_fn=load)


def _by_id(db: Database, model: type) -> DataLoader[int, object | None]:
    return _batched(db, lambda s, ids: catalog.rows_by_id(s, model, ids), lambda: None)


class Loaders:
    """The DataLoaders of one request, each made the first time a resolver asks for it.

    A request pays only for the loaders it uses, and so does a WebSocket connection: one
    that follows a feed holds one loader, not sixteen (about 15 KB each time).
    """

    def __init__(self, db: Database, now: datetime) -> None:
        self._db = db
        self._now = now

    @classmethod
    def create(cls, db: Database, now: datetime) -> Loaders:
        return cls(db, now)

    @cached_property
    def product_by_id(self) -> DataLoader[int, Product | None]:
        return _by_id(self._db, Product)  # type: ignore[return-value]

    @cached_property
    def sku_by_id(self) -> DataLoader[int, Sku | None]:
        return _by_id(self._db, Sku)  # type: ignore[return-value]

    @cached_property
    def brand_by_id(self) -> DataLoader[int, Brand]:
        return _by_id(self._db, Brand)  # type: ignore[return-value]

    @cached_property
    def category_by_id(self) -> DataLoader[int, Category]:
        return _by_id(self._db, Category)  # type: ignore[return-value]

    @cached_property
    def supplier_by_id(self) -> DataLoader[int, Supplier | None]:
        return _by_id(self._db, Supplier)  # type: ignore[return-value]

    @cached_property
    def channel_by_code(self) -> DataLoader[str, Channel | None]:
        return _batched(self._db, catalog.channels_by_code, lambda: None)

    @cached_property
    def skus_by_product(self) -> DataLoader[int, list[Sku]]:
        return _batched(self._db, catalog.skus_of_products, list)

    @cached_property
    def stock_by_sku(self) -> DataLoader[int, StockFigures]:
        return _batched(self._db, stock.stock_for, lambda: StockFigures(0, 0, 0))

    @cached_property
    def stock_by_channel_sku(self) -> DataLoader[tuple[int, int], StockFigures]:
        # What a channel may sell: its quotas applied, a bundle's components' quotas too.
        return _batched(self._db, channel_stock.channel_stock_of, lambda: StockFigures(0, 0, 0))

    @cached_property
    def blind_box_by_sku(self) -> DataLoader[int, BoxView]:
        # Read from the primary: a box's stock decides its odds, as a buyer is about to see them.
        fetch = partial(draws.box_views, now=self._now)
        return _batched(self._db, lambda session, ids: fetch(session, ids), lambda: BoxView([], None, None, False),
                        primary=True)

    @cached_property
    def suppliers_by_sku(self) -> DataLoader[int, list[tuple[int, Supplier]]]:
        return _batched(self._db, catalog.suppliers_of_skus, list)

    @cached_property
    def supplier_links_by_sku(self) -> DataLoader[int, list[tuple[SkuSupplier, Supplier]]]:
        return _batched(self._db, catalog.supplier_links_of_skus, list)

    @cached_property
    def listings_by_product(self) -> DataLoader[int, list[tuple[Channel, int]]]:
        return _batched(self._db, catalog.listings_of_products, list)

    @cached_property
    def listing_by_channel_product(self) -> DataLoader[tuple[int, int], int | None]:
        # Keyed by (channel id, product id): the position, or None when not listed there.
        return _batched(self._db, catalog.listed, lambda: None)

    @cached_property
    def components_by_bundle(self) -> DataLoader[int, list[tuple[Sku, int]]]:
        return _batched(self._db, catalog.bundle_items_of_skus, list)

    @cached_property
    def pricing_by_channel_sku(self) -> DataLoader[tuple[int | None, int], pricing.SkuPricing | None]:
        # Keyed by (channel id, SKU id); channel None means no channel (base prices).
        return _batched(self._db, partial(_pricing, now=self._now), lambda: None)

    @cached_property
    def quota_by_channel_sku(self) -> DataLoader[tuple[int, int], quotas.Quota | None]:
        return _batched(self._db, quotas.quotas_for, lambda: None)

    @cached_property
    def purchase_limit_by_channel_sku(self) -> DataLoader[tuple[int, int], PurchaseLimit | None]:
        return _batched(self._db, limits.purchase_limits, lambda: None)

    @cached_property
    def hold_limit_by_channel(self) -> DataLoader[int, HoldLimit | None]:
        return _batched(self._db, limits.hold_limits, lambda: None)

    @cached_property
    def order_by_id(self) -> DataLoader[int, Order | None]:
        # Orders are read from the primary: a buyer reads the order it has just placed.
        return _batched(self._db, _orders, lambda: None, primary=True)

    @cached_property
    def channel_by_id(self) -> DataLoader[int, Channel | None]:
        return _batched(self._db, order_reads.channels_by_id, lambda: None)

    @cached_property
    def lines_by_order(self) -> DataLoader[int, list[OrderLine]]:
        return _batched(self._db, order_reads.lines_of_orders, list, primary=True)

    @cached_property
    def events_by_order(self) -> DataLoader[int, list[OrderEvent]]:
        return _batched(self._db, order_reads.events_of_orders, list, primary=True)

    @cached_property
    def refunds_by_order(self) -> DataLoader[int, list[Refund]]:
        # From the primary: a payment owed back is on the order in the answer to payOrder.
        return _batched(self._db, refunds.of_orders, list, primary=True)

    @cached_property
    def verdict_by_order(self) -> DataLoader[int, RiskVerdict | None]:
        return _batched(self._db, risk_reads.verdicts_of_orders, lambda: None, primary=True)


async def _pricing(
    session: AsyncSession, keys: Sequence[tuple[int | None, int]], *, now: datetime
) -> dict[tuple[int | None, int], pricing.SkuPricing]:
    return await pricing.pricing_for(session, keys, now)


async def _orders(session: AsyncSession, ids: Sequence[int]) -> dict[int, Order]:
    return await catalog.rows_by_id(session, Order, ids)  # type: ignore[arg-type]
