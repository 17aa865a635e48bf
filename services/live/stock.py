"""What channels may sell of some SKUs right now, for live stock feeds."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import StockFigures
from models import BlindBoxItem, BundleItem, Sku
from services.inventory.channel_stock import channel_stock_for


async def affected(session: AsyncSession, sku_ids: Collection[int]) -> set[int]:
    """The SKUs whose availability moves with these: themselves, the bundles holding them and
    the blind boxes drawing from them (a box has no stock of its own)."""
    if not sku_ids:
        return set()
    holders = await session.scalars(union(
        select(BundleItem.bundle_sku_id).where(BundleItem.component_sku_id.in_(sku_ids)),
        select(BlindBoxItem.box_sku_id).where(BlindBoxItem.item_sku_id.in_(sku_ids)),
    ))
    return set(sku_ids) | set(holders)


async def every_sku(session: AsyncSession) -> set[int]:
    """Every SKU on sale: what a subscriber without a SKU filter may be following."""
    return set(await session.scalars(select(Sku.id).where(Sku.active.is_(True))))


async def channel_figures(
    session: AsyncSession, channel_id: int, sku_ids: Collection[int]
) -> dict[int, StockFigures]:
    return (await figures_by_channel(session, {channel_id: sku_ids})).get(channel_id, {})


async def figures_by_channel(
    session: AsyncSession, wanted: Mapping[int, Collection[int]]
) -> dict[int, dict[int, StockFigures]]:
    """Each channel's figures for its SKUs, in the same statements however many channels ask
    (a bundle capped by the channel's quotas of its components too)."""
    return await channel_stock_for(session, wanted)
