"""What a channel may sell of some SKUs right now, for live stock feeds."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import StockFigures, channel_stock
from models import BundleItem
from services import quotas
from services.stock import stock_for


async def affected(session: AsyncSession, sku_ids: Collection[int]) -> set[int]:
    """The SKUs whose availability moves with these: themselves and bundles holding them."""
    bundles = await session.scalars(
        select(BundleItem.bundle_sku_id).where(BundleItem.component_sku_id.in_(sku_ids))
    )
    return set(sku_ids) | set(bundles)


async def channel_figures(
    session: AsyncSession, channel_id: int, sku_ids: Collection[int]
) -> dict[int, StockFigures]:
    shared = await stock_for(session, sku_ids)
    caps = await quotas.quotas_for(session, [(channel_id, sku_id) for sku_id in sku_ids])
    return {
        sku_id: channel_stock(figures, caps[(channel_id, sku_id)].remaining if (channel_id, sku_id) in caps else None)
        for sku_id, figures in shared.items()
    }
