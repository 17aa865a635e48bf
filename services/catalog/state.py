"""The part of the catalog a set of records touches, read in a few batched statements.

An import of ten thousand SKUs reads its SKUs, products, their bundle components, blind-box
pools, suppliers and listings a chunk of codes at a time, not a row at a time. With `lock`, the
rows the records name are read FOR UPDATE: the import changes them in this transaction,
and an operator's update from the same version then finds its version gone (CONFLICT)
instead of silently undoing the import, or being undone by it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog_input import CodeKind, fold_code
from models import BlindBoxItem, BoxDraw, Brand, BundleItem, Category, Channel, Listing, Product, Sku, SkuSupplier, Supplier
from services.catalog import records

CHUNK = 500

_Row = TypeVar("_Row")

# The spelling of each record type's key, and of each reference a record makes.
KEY_KINDS = {
    "channel": CodeKind.CODE, "supplier": CodeKind.CODE, "brand": CodeKind.CODE, "category": CodeKind.CODE,
    "product": CodeKind.SLUG, "sku": CodeKind.SKU,
}


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def _fold(value: Any, kind: CodeKind) -> str | None:
    return fold_code(value, kind) if isinstance(value, str) else None


@dataclass
class CatalogState:
    channels: dict[str, Channel] = field(default_factory=dict)
    suppliers: dict[str, Supplier] = field(default_factory=dict)
    brands: dict[str, Brand] = field(default_factory=dict)
    categories: dict[str, Category] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    skus: dict[str, Sku] = field(default_factory=dict)
    # By id, for the codes a row refers to.
    product_slugs: dict[int, str] = field(default_factory=dict)
    sku_codes: dict[int, str] = field(default_factory=dict)
    # sku id -> (component SKU id, quantity); sku id -> (supplier id, priority, product code, cost fen)
    components: dict[int, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    sku_suppliers: dict[int, list[tuple[int, int, str | None, int | None]]] = field(
        default_factory=lambda: defaultdict(list))
    # box sku id -> (item SKU id, weight) in published order; the boxes that sold a unit (their pool is frozen)
    pools: dict[int, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    sold_boxes: set[int] = field(default_factory=set)
    # (channel id, product id) -> position
    listings: dict[tuple[int, int], int] = field(default_factory=dict)
    _records: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)

    # -- records of what is stored, in the catalog file's form --------------------------------

    def record_of(self, kind: str, key: str) -> dict[str, Any] | None:
        """The stored object a record names, as a record; None when there is none."""
        if (kind, key) not in self._records:
            self._records[(kind, key)] = self._record_of(kind, key)
        found = self._records[(kind, key)]
        return dict(found) if found is not None else None

    def _record_of(self, kind: str, key: str) -> dict[str, Any] | None:
        if kind == "channel":
            return records.channel_record(self.channels[key]) if key in self.channels else None
        if kind == "supplier":
            return records.supplier_record(self.suppliers[key]) if key in self.suppliers else None
        if kind == "brand":
            return records.brand_record(self.brands[key]) if key in self.brands else None
        if kind == "category":
            return records.category_record(self.categories[key]) if key in self.categories else None
        if kind == "product":
            return self.product_record(self.products[key]) if key in self.products else None
        if kind == "sku":
            return self.sku_record(self.skus[key]) if key in self.skus else None
        channel, _, product = key.partition("/")
        position = self.listing_position(channel, product)
        return records.listing_record(channel, product, position) if position is not None else None

    def product_record(self, row: Product) -> dict[str, Any]:
        brands = {b.id: b.code for b in self.brands.values()}
        categories = {c.id: c.code for c in self.categories.values()}
        return records.product_record(row, brands[row.brand_id], categories[row.category_id])

    def sku_record(self, row: Sku) -> dict[str, Any]:
        supplier_codes = {s.id: s.code for s in self.suppliers.values()}
        return records.sku_record(
            row, self.product_slugs[row.product_id],
            [(self.sku_codes[c], q) for c, q in self.components.get(row.id, [])],
            [(supplier_codes[s], p, code, cost) for s, p, code, cost in self.sku_suppliers.get(row.id, [])],
            [(self.sku_codes[item], weight) for item, weight in self.pools.get(row.id, [])],
        )

    def box_sold(self, code: str) -> bool:
        """The stored box `code` has drawn a unit: its items and weights are frozen."""
        return code in self.skus and self.skus[code].id in self.sold_boxes

    def listing_position(self, channel: str, product: str) -> int | None:
        if channel not in self.channels or product not in self.products:
            return None
        return self.listings.get((self.channels[channel].id, self.products[product].id))

    # -- reading ------------------------------------------------------------------------------

    @classmethod
    async def of_records(cls, session: AsyncSession, raw: Sequence[dict[str, Any]], *, lock: bool = False) -> CatalogState:
        """What the records name or refer to, as stored now."""
        named: dict[str, set[str]] = defaultdict(set)
        for record in raw:
            if isinstance(record, dict):
                _references(record, named)
        state = cls()
        await state._small_tables(session, named, lock)
        await state._products(session, sorted(named["product"]), lock)
        await state._skus(session, sorted(named["sku"]), lock)
        await state._listings(session, lock)
        return state

    @classmethod
    async def everything(cls, session: AsyncSession) -> CatalogState:
        """The whole catalog (for an export)."""
        state = cls()
        await state._small_tables(session, defaultdict(set), False)
        await state._products(session, None, False)
        await state._skus(session, None, False)
        await state._listings(session, False)
        return state

    async def _small_tables(self, session: AsyncSession, named: dict[str, set[str]], lock: bool) -> None:
        # Channels, suppliers, brands and categories number in the hundreds: read them all,
        # and lock those the records name.
        for model, target, kind in ((Channel, self.channels, "channel"), (Supplier, self.suppliers, "supplier"),
                                    (Brand, self.brands, "brand"), (Category, self.categories, "category")):
            if lock and named[kind]:
                await session.execute(
                    select(model.id).where(model.code.in_(sorted(named[kind]))).order_by(model.code).with_for_update()
                )
            target.update({row.code: row for row in await session.scalars(select(model).order_by(model.code))})

    async def _products(self, session: AsyncSession, slugs: list[str] | None, lock: bool) -> None:
        for row in await _rows(session, Product, Product.slug, slugs, lock):
            self.products[row.slug] = row
            self.product_slugs[row.id] = row.slug

    async def _skus(self, session: AsyncSession, codes: list[str] | None, lock: bool) -> None:
        rows = await _rows(session, Sku, Sku.code, codes, lock)
        found = {row.id: row for row in rows}
        ids = sorted(found)
        for chunk in _chunks(ids):
            for bundle, component, quantity in await session.execute(
                select(BundleItem.bundle_sku_id, BundleItem.component_sku_id, BundleItem.quantity)
                .where(BundleItem.bundle_sku_id.in_(chunk)).order_by(BundleItem.bundle_sku_id)
            ):
                self.components[bundle].append((component, quantity))
            for sku_id, supplier_id, priority, code, cost in await session.execute(
                select(SkuSupplier.sku_id, SkuSupplier.supplier_id, SkuSupplier.priority, SkuSupplier.product_code,
                       SkuSupplier.cost_fen).where(SkuSupplier.sku_id.in_(chunk)).order_by(SkuSupplier.priority)
            ):
                self.sku_suppliers[sku_id].append((supplier_id, priority, code, cost))
            for box, item, weight in await session.execute(
                select(BlindBoxItem.box_sku_id, BlindBoxItem.item_sku_id, BlindBoxItem.weight)
                .where(BlindBoxItem.box_sku_id.in_(chunk)).order_by(BlindBoxItem.box_sku_id, BlindBoxItem.position)
            ):
                self.pools[box].append((item, weight))
            self.sold_boxes.update(await session.scalars(
                select(BoxDraw.box_sku_id).where(BoxDraw.box_sku_id.in_(chunk)).distinct()
            ))
        # The components of the bundles and the items of the boxes read, and the products of every SKU read.
        referred = {c for parts in self.components.values() for c, _ in parts}
        referred |= {item for items in self.pools.values() for item, _ in items}
        missing = sorted(referred - set(found))
        for chunk in _chunks(missing):
            found.update({row.id: row for row in await session.scalars(select(Sku).where(Sku.id.in_(chunk)))})
        for row in found.values():
            self.skus[row.code] = row
            self.sku_codes[row.id] = row.code
        products = sorted({row.product_id for row in found.values()} - set(self.product_slugs))
        for chunk in _chunks(products):
            for product in await session.scalars(select(Product).where(Product.id.in_(chunk))):
                self.products[product.slug] = product
                self.product_slugs[product.id] = product.slug

    async def _listings(self, session: AsyncSession, lock: bool) -> None:
        ids = sorted(self.product_slugs)
        for chunk in _chunks(ids):
            query = select(Listing).where(Listing.product_id.in_(chunk)).order_by(Listing.channel_id, Listing.product_id)
            for row in await session.scalars(query.with_for_update() if lock else query):
                self.listings[(row.channel_id, row.product_id)] = row.position


async def _rows(session: AsyncSession, model: type[_Row], column: Any, keys: list[str] | None, lock: bool) -> list[_Row]:
    if keys is None:
        return list(await session.scalars(select(model).order_by(column)))
    found: list[_Row] = []
    for chunk in _chunks(keys):
        query = select(model).where(column.in_(chunk)).order_by(column)
        found.extend(await session.scalars(query.with_for_update() if lock else query))
    return found


def _references(record: dict[str, Any], named: dict[str, set[str]]) -> None:
    """Note the codes a raw record names or refers to, in their one spelling."""
    kind = record.get("type")

    def note(target: str, value: Any) -> None:
        folded = _fold(value, KEY_KINDS[target])
        if folded:
            named[target].add(folded)

    if kind in ("channel", "supplier", "brand", "category"):
        note(kind, record.get("code"))
    elif kind == "product":
        note("product", record.get("slug"))
        note("brand", record.get("brand"))
        note("category", record.get("category"))
    elif kind == "sku":
        note("sku", record.get("code"))
        note("product", record.get("product"))
        for name in ("components", "pool"):
            for part in record.get(name) or () if isinstance(record.get(name), list) else ():
                if isinstance(part, dict):
                    note("sku", part.get("sku"))
        for line in record.get("suppliers") or () if isinstance(record.get("suppliers"), list) else ():
            if isinstance(line, dict):
                note("supplier", line.get("supplier"))
    elif kind == "listing":
        note("channel", record.get("channel"))
        note("product", record.get("product"))

