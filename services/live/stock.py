"""What channels may sell of some SKUs right now, for live stock feeds."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import StockFigures, channel_stock
from models import BundleItem
from services.inventory import quotas
from services.inventory.stock import stock_for


async def affected(session: AsyncSession, sku_ids: Collection[int]) -> set[int]:
    """The SKUs whose availability moves with these: themselves and bundles holding them."""
    if not sku_ids:
        return set()
    bundles = await session.scalars(
        select(BundleItem.bundle_sku_id).where(BundleItem.component_sku_id.in_(sku_ids))
    )
    return set(sku_ids) | set(bundles)


async def channel_figures(
    session: AsyncSession, channel_id: int, sku_ids: Collection[int]
) -> dict[int, StockFigures]:
    return (await figures_by_channel(session, {channel_id: sku_ids})).get(channel_id, {})


async def figures_by_channel(
    session: AsyncSession, wanted: Mapping[int, Collection[int]]
) -> dict[int, dict[int, StockFigures]]:
    """Each channel's figures for its SKUs, in the same statements however many channels ask:
    the shared pool is read once for all SKUs, the quotas once for all (channel, SKU) pairs."""
    every = {sku_id for sku_ids in wanted.values() for sku_id in sku_ids}
    if not every:
        return {}
    shared = await stock_for(session, every)
    pairs = [(channel_id, sku_id) for channel_id, sku_ids in wanted.items() for sku_id in sku_ids]
    caps = await quotas.quotas_for(session, pairs)
    figures: dict[int, dict[int, StockFigures]] = {}
    for channel_id, sku_ids in wanted.items():
        figures[channel_id] = {
            sku_id: channel_stock(
                shared[sku_id],
                caps[(channel_id, sku_id)].remaining if (channel_id, sku_id) in caps else None,
            )
            for sku_id in sku_ids
            if sku_id in shared
        }
    return figures
