"""The catalog's reference data, kept per process: channels, brands, categories, each
product's SKUs, their bundle parts and their pricing on each channel.

A catalog page reads these for every request and they change only when an operator changes
the catalog or a price, so each process keeps what it read. A change commits, then the
process that made it drops its copy at once (`on_event`, before the event goes out) and
every other process when the broker delivers `catalog.changed` (`follow`). Stock moves send
`catalog.changed` with a stock message (services/core/events.py STOCK_ONLY): those leave
reference data alone, since stock, quotas and presale use are read with every page
(page_stock.py). A time-to-live covers a
broker that lost a message; price windows are evaluated at each request's own moment, so a
promotion opens and closes on time whatever the age of the copy.

Rows are plain named tuples, not ORM objects: nothing here is written back.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from broker import Broker
from broker.follow import follow
from domain.catalog import DRAWN, SkuKind
from models import BlindBoxItem, Brand, BundleItem, Category, Channel, Sku
from services.core.events import CATALOG_CHANGED, STOCK_ONLY
from services.pricing.prices import SkuPricing, pricing_for


class ChannelRef(NamedTuple):
    id: int
    code: str
    currency: str
    active: bool
    public: bool


class NamedRef(NamedTuple):
    """A brand or a category."""

    id: int
    code: str
    name: str
    version: int
    archived_at: datetime | None


class SkuRef(NamedTuple):
    id: int
    product_id: int
    code: str
    name: str
    kind: SkuKind
    currency: str
    face_value_fen: int
    base_price_fen: int
    price_floor_fen: int | None
    price_ceiling_fen: int | None
    serial_uses: int
    account_formats: str
    version: int
    archived_at: datetime | None


_SKU_COLUMNS = tuple(getattr(Sku, name) for name in SkuRef._fields)
_NAMED = ("id", "code", "name", "version", "archived_at")


class Reference:
    """What catalog pages read besides the page itself and its stock, read once and kept
    until a change (or `ttl_seconds`)."""

    def __init__(self, ttl_seconds: float = 10.0, size: int = 20_000) -> None:
        self._ttl = ttl_seconds
        self._size = size
        self._born = time.monotonic()
        self._generation = 0  # bumped by each change: a read begun before it is not kept
        self._channels: dict[str, ChannelRef | None] = {}
        self._brands: dict[int, NamedRef] = {}
        self._categories: dict[int, NamedRef] = {}
        self._skus: dict[int, tuple[SkuRef, ...]] = {}  # active SKUs by product, cheapest first
        self._parts: dict[int, tuple[tuple[int, int], ...]] = {}  # bundle id -> (component, quantity)
        self._components: dict[int, SkuRef] = {}  # bundle components by id (they may sit on no page)
        self._pricing: dict[tuple[int, int], SkuPricing] = {}

    def _fresh(self) -> int:
        if time.monotonic() - self._born > self._ttl or self._count() > self._size:
            self.forget()
        return self._generation

    def _count(self) -> int:
        return len(self._skus) + len(self._pricing) + len(self._components)

    # --- reads -----------------------------------------------------------------------------

    async def channel(self, conn: AsyncConnection, code: str) -> ChannelRef | None:
        generation = self._fresh()
        if code in self._channels:
            return self._channels[code]
        row = (
            await conn.execute(
                select(Channel.id, Channel.code, Channel.currency, Channel.active, Channel.public)
                .where(Channel.code == code)
            )
        ).first()
        found = ChannelRef(*row) if row is not None else None
        # A code that names nothing is not kept: a flood of made-up codes costs reads, not memory.
        if found is not None and generation == self._generation:
            self._channels[code] = found
        return found

    async def brands(self, conn: AsyncConnection, ids: Iterable[int]) -> dict[int, NamedRef]:
        return await self._named(conn, Brand, self._brands, ids)

    async def categories(self, conn: AsyncConnection, ids: Iterable[int]) -> dict[int, NamedRef]:
        return await self._named(conn, Category, self._categories, ids)

    async def _named(
        self, conn: AsyncConnection, model: Any, kept: dict[int, NamedRef], ids: Iterable[int]
    ) -> dict[int, NamedRef]:
        generation = self._fresh()
        missing = {i for i in ids if i not in kept}
        if missing:
            rows = await conn.execute(select(*(getattr(model, c) for c in _NAMED)).where(model.id.in_(missing)))
            read = {row[0]: NamedRef(*row) for row in rows}
            if generation == self._generation:
                kept.update(read)
            return {**kept, **read}
        return kept

    async def skus(
        self, conn: AsyncConnection, product_ids: Collection[int]
    ) -> tuple[dict[int, tuple[SkuRef, ...]], dict[int, tuple[tuple[int, int], ...]]]:
        """Each product's active SKUs, cheapest first (then by id), and each bundle's parts
        among them: (component id, quantity per bundle). The two maps are read together and
        stay together, whatever a change does to the copy meanwhile."""
        generation = self._fresh()
        missing = [i for i in product_ids if i not in self._skus]
        if not missing:
            return self._skus, self._parts
        grouped: dict[int, list[SkuRef]] = {i: [] for i in missing}
        for row in await conn.execute(
            select(*_SKU_COLUMNS)
            .where(Sku.product_id.in_(missing), Sku.active.is_(True))
            .order_by(Sku.product_id, Sku.base_price_fen, Sku.id)
        ):
            grouped[row[1]].append(SkuRef(*row))
        bundles = [sku.id for skus in grouped.values() for sku in skus if sku.kind in (SkuKind.BUNDLE, SkuKind.BLIND_BOX)]
        parts = await self._read_parts(conn, bundles) if bundles else {}
        read = {i: tuple(skus) for i, skus in grouped.items()}
        if generation == self._generation:
            self._skus.update(read)
            self._parts.update(parts)
            return self._skus, self._parts
        return {**self._skus, **read}, {**self._parts, **parts}

    async def _read_parts(self, conn: AsyncConnection, bundles: list[int]) -> dict[int, tuple[tuple[int, int], ...]]:
        grouped: dict[int, list[tuple[int, int]]] = {i: [] for i in bundles}
        # A blind box's items come as parts of quantity DRAWN (domain/catalog.py).
        for bundle_id, component_id, quantity in sorted((await conn.execute(union_all(
            select(BundleItem.bundle_sku_id, BundleItem.component_sku_id, BundleItem.quantity)
            .where(BundleItem.bundle_sku_id.in_(bundles)),
            select(BlindBoxItem.box_sku_id, BlindBoxItem.item_sku_id, literal(DRAWN))
            .where(BlindBoxItem.box_sku_id.in_(bundles)),
        ))).all()):
            grouped[bundle_id].append((component_id, quantity))
        return {i: tuple(parts) for i, parts in grouped.items()}

    async def components(self, conn: AsyncConnection, ids: Collection[int]) -> dict[int, SkuRef]:
        """SKUs by id, active or not: the components of bundles, whose kind decides their stock."""
        generation = self._fresh()
        missing = [i for i in ids if i not in self._components]
        if not missing:
            return self._components
        read = {row[0]: SkuRef(*row) for row in await conn.execute(select(*_SKU_COLUMNS).where(Sku.id.in_(missing)))}
        if generation == self._generation:
            self._components.update(read)
            return self._components
        return {**self._components, **read}

    async def pricing(
        self, conn: AsyncConnection, channel_id: int, skus: Collection[SkuRef], now: datetime
    ) -> dict[tuple[int, int], SkuPricing]:
        """Pricing of the SKUs on the channel: base, bounds, channel rules and tiers, to be
        resolved at the request's own moment (`SkuPricing.at`)."""
        generation = self._fresh()
        missing = {sku.id: sku for sku in skus if (channel_id, sku.id) not in self._pricing}
        if not missing:
            return self._pricing
        # pricing_for reads of a SKU only what SkuRef holds (currency, base price, bounds).
        async with AsyncSession(bind=conn) as session:
            read = await pricing_for(session, [(channel_id, i) for i in missing], now, skus=missing)  # type: ignore[arg-type]
        found = {(channel_id, sku_id): value for (_, sku_id), value in read.items()}
        if generation == self._generation:
            self._pricing.update(found)
            return self._pricing
        return {**self._pricing, **found}

    # --- changes ---------------------------------------------------------------------------

    def forget(self) -> None:
        self._generation += 1
        self._born = time.monotonic()
        self._channels = {}
        self._brands = {}
        self._categories = {}
        self._skus = {}
        self._parts = {}
        self._components = {}
        self._pricing = {}

    def on_event(self, topic: str, message: bytes = b"") -> None:
        """This process's own changes, heard before they go out on the broker."""
        if topic == CATALOG_CHANGED and message not in STOCK_ONLY:
            self.forget()

    async def follow(self, broker: Broker) -> None:
        """Forget everything whenever the catalog or a price changes in any process."""
        await follow(broker, CATALOG_CHANGED, lambda message: self.on_event(CATALOG_CHANGED, message),
                     on_lost=self.forget, what="catalog change events (catalog reference data)")

