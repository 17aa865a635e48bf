"""Per-request DataLoaders. Each batch opens its own short session on the read side."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from domain.catalog import StockFigures
from models import Brand, Category, Channel, Product, Sku, Supplier
from models import Order, OrderEvent, OrderLine
from services import catalog, order_reads, pricing, quotas, stock
from services.database import Database

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
            found = await fetch(session, keys)
        return [found[key] if key in found else missing() for key in keys]

    return DataLoader(load_fn=load)


def _by_id(db: Database, model: type) -> DataLoader[int, object | None]:
    return _batched(db, lambda s, ids: catalog.rows_by_id(s, model, ids), lambda: None)


@dataclass(frozen=True)
class Loaders:
    product_by_id: DataLoader[int, Product | None]
    sku_by_id: DataLoader[int, Sku | None]
    brand_by_id: DataLoader[int, Brand]
    category_by_id: DataLoader[int, Category]
    supplier_by_id: DataLoader[int, Supplier | None]
    channel_by_code: DataLoader[str, Channel | None]
    skus_by_product: DataLoader[int, list[Sku]]
    stock_by_sku: DataLoader[int, StockFigures]
    suppliers_by_sku: DataLoader[int, list[tuple[int, Supplier]]]
    components_by_bundle: DataLoader[int, list[tuple[Sku, int]]]
    # Keyed by (channel id, SKU id); channel None means no channel (base prices).
    pricing_by_channel_sku: DataLoader[tuple[int | None, int], pricing.SkuPricing | None]
    quota_by_channel_sku: DataLoader[tuple[int, int], quotas.Quota | None]
    order_by_id: DataLoader[int, Order | None]
    channel_by_id: DataLoader[int, Channel | None]
    lines_by_order: DataLoader[int, list[OrderLine]]
    events_by_order: DataLoader[int, list[OrderEvent]]

    @classmethod
    def create(cls, db: Database, now: datetime) -> Loaders:
        return cls(
            product_by_id=_by_id(db, Product),  # type: ignore[arg-type]
            sku_by_id=_by_id(db, Sku),  # type: ignore[arg-type]
            brand_by_id=_by_id(db, Brand),  # type: ignore[arg-type]
            category_by_id=_by_id(db, Category),  # type: ignore[arg-type]
            supplier_by_id=_by_id(db, Supplier),  # type: ignore[arg-type]
            channel_by_code=_batched(db, catalog.channels_by_code, lambda: None),
            skus_by_product=_batched(db, catalog.skus_of_products, list),
            stock_by_sku=_batched(db, stock.stock_for, lambda: StockFigures(0, 0, 0)),
            suppliers_by_sku=_batched(db, catalog.suppliers_of_skus, list),
            components_by_bundle=_batched(db, catalog.bundle_items_of_skus, list),
            pricing_by_channel_sku=_batched(db, partial(_pricing, now=now), lambda: None),
            quota_by_channel_sku=_batched(db, quotas.quotas_for, lambda: None),
            # Orders are read from the primary: a buyer reads the order it has just placed.
            order_by_id=_batched(db, _orders, lambda: None, primary=True),
            channel_by_id=_batched(db, order_reads.channels_by_id, lambda: None),
            lines_by_order=_batched(db, order_reads.lines_of_orders, list, primary=True),
            events_by_order=_batched(db, order_reads.events_of_orders, list, primary=True),
        )


async def _pricing(
    session: AsyncSession, keys: Sequence[tuple[int | None, int]], *, now: datetime
) -> dict[tuple[int | None, int], pricing.SkuPricing]:
    return await pricing.pricing_for(session, keys, now)


async def _orders(session: AsyncSession, ids: Sequence[int]) -> dict[int, Order]:
    return await catalog.rows_by_id(session, Order, ids)  # type: ignore[arg-type]
