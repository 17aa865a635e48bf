"""Catalog rows for service tests, written the way an operator's import would leave them."""

from __future__ import annotations

import itertools
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import CodeStatus, SkuKind
from models import (
    Brand,
    BundleItem,
    CardCode,
    Category,
    Channel,
    Listing,
    Product,
    Sku,
    SkuSupplier,
    StockLevel,
    Supplier,
)

_serial = itertools.count(1)


def unique(prefix: str) -> str:
    """A code no other row in this run uses."""
    return f"{prefix}-{next(_serial)}"


async def brand(session: AsyncSession, code: str, name: str | None = None) -> Brand:
    row = Brand(code=code, name=name or code)
    session.add(row)
    await session.flush()
    return row


async def category(session: AsyncSession, code: str, name: str | None = None) -> Category:
    row = Category(code=code, name=name or code)
    session.add(row)
    await session.flush()
    return row


async def product(
    session: AsyncSession,
    *,
    brand: Brand,
    category: Category,
    name: str,
    description: str = "",
    slug: str | None = None,
    active: bool = True,
    listed: bool = True,
) -> Product:
    """A product, listed (unless `listed` is False) on every channel there is now, last."""
    row = Product(
        slug=slug or unique("product"),
        name=name,
        description=description,
        brand_id=brand.id,
        category_id=category.id,
        active=active,
    )
    session.add(row)
    await session.flush()
    if listed:
        await list_everywhere(session, row)
    return row


async def list_all_on(session: AsyncSession, channel_id: int) -> None:
    """List every product there is on a new channel, in id order."""
    products = list(await session.scalars(select(Product.id).order_by(Product.id)))
    session.add_all(Listing(channel_id=channel_id, product_id=pk, position=n) for n, pk in enumerate(products, 1))
    await session.flush()


async def list_everywhere(session: AsyncSession, product: Product) -> None:
    """List a product at the end of every channel's catalog, as an operator would."""
    channels = (await session.execute(
        select(Channel.id, func.coalesce(func.max(Listing.position), 0))
        .outerjoin(Listing, Listing.channel_id == Channel.id)
        .group_by(Channel.id)
    )).all()
    session.add_all(Listing(channel_id=c, product_id=product.id, position=last + 1) for c, last in channels)
    await session.flush()


async def sku(
    session: AsyncSession,
    product: Product,
    kind: SkuKind,
    *,
    price_fen: int = 1000,
    presale_cap: int = 0,
    active: bool = True,
) -> Sku:
    row = Sku(
        product_id=product.id,
        code=unique(kind.value),
        name=f"{product.name} {kind.value}",
        kind=kind,
        face_value_fen=price_fen,
        supplier_cost_fen=price_fen * 9 // 10,
        base_price_fen=price_fen,
        presale_cap=presale_cap,
        active=active,
    )
    session.add(row)
    await session.flush()
    return row


def codes(
    session: AsyncSession,
    sku: Sku,
    status: CodeStatus,
    count: int,
    *,
    uses: int = 1,
    expires_at: datetime | None = None,
) -> None:
    for _ in range(count):
        digest = unique("digest")
        session.add(
            CardCode(
                sku_id=sku.id,
                secret_ciphertext=digest.encode(),
                secret_digest=digest,
                status=status,
                uses_left=uses,
                expires_at=expires_at,
            )
        )


def counter(session: AsyncSession, sku: Sku, *, on_hand: int, reserved: int = 0) -> None:
    session.add(StockLevel(sku_id=sku.id, on_hand=on_hand, reserved=reserved))


def bundle_items(session: AsyncSession, bundle: Sku, *parts: tuple[Sku, int]) -> None:
    for component, quantity in parts:
        session.add(
            BundleItem(bundle_sku_id=bundle.id, component_sku_id=component.id, quantity=quantity)
        )


async def supplier(session: AsyncSession, name: str, *, active: bool = True) -> Supplier:
    row = Supplier(code=unique("supplier"), name=name, active=active)
    session.add(row)
    await session.flush()
    return row


def supplies(session: AsyncSession, sku: Sku, supplier: Supplier, priority: int) -> None:
    session.add(SkuSupplier(sku_id=sku.id, supplier_id=supplier.id, priority=priority))
