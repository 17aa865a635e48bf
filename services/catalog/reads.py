"""Catalog reads: pages of products with filters, and batched look-ups for loaders."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, and_, exists, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import SkuKind
from models import Brand, BundleItem, Category, Channel, Listing, Product, Sku, SkuSupplier, Supplier

_Row = TypeVar("_Row")
_Query = TypeVar("_Query", bound=Select[Any])


@dataclass(frozen=True, slots=True)
class ProductFilter:
    brand: str | None = None
    category: str | None = None
    kind: SkuKind | None = None
    text: str | None = None


def _filtered(query: _Query, f: ProductFilter) -> _Query:
    query = query.where(Product.active.is_(True))
    if f.brand is not None:
        query = query.where(Product.brand_id == select(Brand.id).where(Brand.code == f.brand).scalar_subquery())
    if f.category is not None:
        query = query.where(
            Product.category_id == select(Category.id).where(Category.code == f.category).scalar_subquery()
        )
    if f.kind is not None:
        query = query.where(
            exists().where(Sku.product_id == Product.id, Sku.kind == f.kind, Sku.active.is_(True))
        )
    if f.text:
        # Case-insensitive substring on name and description, the same on both backends.
        needle = f"%{_escape_like(f.text.lower())}%"
        query = query.where(
            or_(
                func.lower(Product.name).like(needle, escape="\\"),
                func.lower(Product.description).like(needle, escape="\\"),
            )
        )
    return query


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _on_channel(query: _Query, channel_id: int) -> _Query:
    return query.join(Listing, and_(Listing.product_id == Product.id, Listing.channel_id == channel_id))


async def product_page(
    session: AsyncSession, f: ProductFilter, *, after_id: int | None, limit: int, channel_id: int | None = None
) -> tuple[list[Product], bool]:
    """One page (keyset), and whether more follow: a channel's products in the order of its
    listings (position, then id); without a channel, every product in id order."""
    query = page_query(select(Product), f, after_id=after_id, limit=limit, channel_id=channel_id)
    rows = list(await session.scalars(query))
    return rows[:limit], len(rows) > limit


def page_query(
    query: _Query, f: ProductFilter, *, after_id: int | None, limit: int, channel_id: int | None = None
) -> _Query:
    """`query` (a select of Product or of its columns) narrowed to one page and one more row,
    which says whether more follow."""
    if channel_id is None:
        query = _filtered(query, f)
        if after_id is not None:
            query = query.where(Product.id > after_id)
        return query.order_by(Product.id).limit(limit + 1)
    query = _on_channel(_filtered(query, f), channel_id)
    if after_id is not None:
        # The cursor names the last product of the page before; its listing says where that was.
        # A product unlisted since then ends the walk rather than starting it over.
        after = select(Listing.position).where(Listing.channel_id == channel_id, Listing.product_id == after_id)
        position = after.scalar_subquery()
        query = query.where(or_(Listing.position > position, and_(Listing.position == position, Product.id > after_id)))
    return query.order_by(Listing.position, Product.id).limit(limit + 1)


async def count_products(session: AsyncSession, f: ProductFilter, channel_id: int | None = None) -> int:
    query = _filtered(select(func.count()).select_from(Product), f)
    if channel_id is not None:
        query = _on_channel(query, channel_id)
    return int(await session.scalar(query) or 0)


async def product_by_slug(session: AsyncSession, slug: str, channel_id: int | None = None) -> Product | None:
    query = select(Product).where(Product.slug == slug, Product.active.is_(True))
    if channel_id is not None:
        query = _on_channel(query, channel_id)
    return await session.scalar(query)


async def listed(session: AsyncSession, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """Positions of (channel id, product id) pairs that are listed; others are left out."""
    rows = await session.execute(
        select(Listing.channel_id, Listing.product_id, Listing.position)
        .where(tuple_(Listing.channel_id, Listing.product_id).in_(list(keys)))
    )
    return {(channel_id, product_id): position for channel_id, product_id, position in rows}


async def listings_of_products(session: AsyncSession, product_ids: Sequence[int]) -> dict[int, list[tuple[Channel, int]]]:
    """Each product's channels with its position there, in channel code order."""
    grouped: dict[int, list[tuple[Channel, int]]] = defaultdict(list)
    query = (
        select(Listing.product_id, Channel, Listing.position)
        .join(Channel, Channel.id == Listing.channel_id)
        .where(Listing.product_id.in_(product_ids))
        .order_by(Listing.product_id, Channel.code)
    )
    for product_id, channel, position in await session.execute(query):
        grouped[product_id].append((channel, position))
    return grouped


async def rows_by_id(session: AsyncSession, model: type[_Row], ids: Sequence[int]) -> dict[int, _Row]:
    rows = await session.scalars(select(model).where(model.id.in_(ids)))  # type: ignore[attr-defined]
    return {row.id: row for row in rows}  # type: ignore[attr-defined]


async def channels_by_code(session: AsyncSession, codes: Sequence[str]) -> dict[str, Channel]:
    rows = await session.scalars(select(Channel).where(Channel.code.in_(codes)))
    return {row.code: row for row in rows}


async def skus_of_products(session: AsyncSession, product_ids: Sequence[int]) -> dict[int, list[Sku]]:
    grouped: dict[int, list[Sku]] = defaultdict(list)
    query = (
        select(Sku)
        .where(Sku.product_id.in_(product_ids), Sku.active.is_(True))
        .order_by(Sku.product_id, Sku.base_price_fen, Sku.id)
    )
    for sku in await session.scalars(query):
        grouped[sku.product_id].append(sku)
    return grouped


async def suppliers_of_skus(
    session: AsyncSession, sku_ids: Sequence[int]
) -> dict[int, list[tuple[int, Supplier]]]:
    links = await supplier_links_of_skus(session, sku_ids)
    return {sku_id: [(link.priority, supplier) for link, supplier in pairs] for sku_id, pairs in links.items()}


async def supplier_links_of_skus(
    session: AsyncSession, sku_ids: Sequence[int]
) -> dict[int, list[tuple[SkuSupplier, Supplier]]]:
    """Each SKU's supplier links (priority, product code, cost) with the supplier, first first."""
    grouped: dict[int, list[tuple[SkuSupplier, Supplier]]] = defaultdict(list)
    query = (
        select(SkuSupplier, Supplier)
        .join(Supplier, Supplier.id == SkuSupplier.supplier_id)
        .where(SkuSupplier.sku_id.in_(sku_ids))
        .order_by(SkuSupplier.sku_id, SkuSupplier.priority)
    )
    for link, supplier in await session.execute(query):
        grouped[link.sku_id].append((link, supplier))
    return grouped


async def bundle_items_of_skus(
    session: AsyncSession, sku_ids: Sequence[int]
) -> dict[int, list[tuple[Sku, int]]]:
    grouped: dict[int, list[tuple[Sku, int]]] = defaultdict(list)
    query = (
        select(BundleItem.bundle_sku_id, BundleItem.quantity, Sku)
        .join(Sku, Sku.id == BundleItem.component_sku_id)
        .where(BundleItem.bundle_sku_id.in_(sku_ids))
        .order_by(BundleItem.bundle_sku_id, Sku.id)
    )
    for bundle_id, quantity, component in await session.execute(query):
        grouped[bundle_id].append((component, quantity))
    return grouped
