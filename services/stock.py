"""Available-to-sell per SKU, computed by the database in a fixed number of statements."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import NO_STOCK, CodeStatus, SkuKind, StockFigures, bundle_stock
from models import BundleItem, CardCode, Sku, StockLevel

_COUNTED = (CodeStatus.AVAILABLE, CodeStatus.RESERVED)


async def stock_for(session: AsyncSession, sku_ids: Collection[int]) -> dict[int, StockFigures]:
    """Stock of each SKU; a bundle's from its components. Four statements whatever the count."""
    if not sku_ids:
        return {}
    components: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for bundle_id, component_id, quantity in await session.execute(
        select(BundleItem.bundle_sku_id, BundleItem.component_sku_id, BundleItem.quantity).where(
            BundleItem.bundle_sku_id.in_(sku_ids)
        )
    ):
        components[bundle_id].append((component_id, quantity))
    wanted = set(sku_ids) | {c for parts in components.values() for c, _ in parts}

    skus = {
        sku_id: (kind, presale_cap)
        for sku_id, kind, presale_cap in await session.execute(
            select(Sku.id, Sku.kind, Sku.presale_cap).where(Sku.id.in_(wanted))
        )
    }
    # Uses, not rows: a SERIAL code carries several uses; a card code has one.
    codes: dict[int, dict[CodeStatus, int]] = defaultdict(dict)
    for sku_id, status, uses in await session.execute(
        select(CardCode.sku_id, CardCode.status, func.sum(CardCode.uses_left))
        .where(CardCode.sku_id.in_(wanted), CardCode.status.in_(_COUNTED))
        .group_by(CardCode.sku_id, CardCode.status)
    ):
        codes[sku_id][status] = int(uses or 0)
    counters = {
        sku_id: (on_hand, reserved)
        for sku_id, on_hand, reserved in await session.execute(
            select(StockLevel.sku_id, StockLevel.on_hand, StockLevel.reserved).where(
                StockLevel.sku_id.in_(wanted)
            )
        )
    }

    def single(sku_id: int) -> StockFigures:
        if sku_id not in skus:
            return NO_STOCK
        kind, presale_cap = skus[sku_id]
        if kind is SkuKind.DIRECT_RECHARGE:
            on_hand, reserved = counters.get(sku_id, (0, 0))
            return StockFigures(available=max(on_hand - reserved, 0), reserved=reserved)
        pool = codes.get(sku_id, {})
        return StockFigures(
            available=pool.get(CodeStatus.AVAILABLE, 0),
            reserved=pool.get(CodeStatus.RESERVED, 0),
            presale=presale_cap,
        )

    result: dict[int, StockFigures] = {}
    for sku_id in sku_ids:
        kind = skus.get(sku_id, (None, 0))[0]
        if kind is SkuKind.BUNDLE:
            result[sku_id] = bundle_stock((single(c), q) for c, q in components.get(sku_id, []))
        else:
            result[sku_id] = single(sku_id)
    return result
