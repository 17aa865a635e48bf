"""Catalog reads: pages of products with filters, and batched look-ups for loaders."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import SkuKind
from models import Brand, BundleItem, Category, Channel, Product, Sku, SkuSupplier, Supplier

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


async def product_page(
    session: AsyncSession, f: ProductFilter, *, after_id: int | None, limit: int
) -> tuple[list[Product], bool]:
    """One page in id order (keyset), and whether more follow."""
    query = _filtered(select(Product), f)
    if after_id is not None:
        query = query.where(Product.id > after_id)
    rows = list(await session.scalars(query.order_by(Product.id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


async def count_products(session: AsyncSession, f: ProductFilter) -> int:
    query = _filtered(select(func.count()).select_from(Product), f)
    return int(await session.scalar(query) or 0)


async def product_by_slug(session: AsyncSession, slug: str) -> Product | None:
    return await session.scalar(select(Product).where(Product.slug == slug, Product.active.is_(True)))


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
    grouped: dict[int, list[tuple[int, Supplier]]] = defaultdict(list)
    query = (
        select(SkuSupplier.sku_id, SkuSupplier.priority, Supplier)
        .join(Supplier, Supplier.id == SkuSupplier.supplier_id)
        .where(SkuSupplier.sku_id.in_(sku_ids))
        .order_by(SkuSupplier.sku_id, SkuSupplier.priority)
    )
    for sku_id, priority, supplier in await session.execute(query):
        grouped[sku_id].append((priority, supplier))
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
