"""What each channel may sell: the shared pool capped by the channel's quotas.

A bundle is capped by the channel's quota of each of its components as well as by its own:
selling one takes from all of them (see quotas.consume). A blind box sells as often as its
items have units, each capped by the channel's quota of it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import DRAWN, StockFigures, box_stock, channel_bundle_stock, channel_stock
from services.inventory.quotas import quotas_for
from services.inventory.stock import bundle_parts, stock_for


async def channel_stock_for(
    session: AsyncSession, wanted: Mapping[int, Collection[int]], *, now: datetime | None = None
) -> dict[int, dict[int, StockFigures]]:
    """Each channel's figures for its SKUs, in the same statements however many channels and
    SKUs ask: the bundles' parts, the shared pool of every SKU and component, and the quotas
    of every (channel, SKU) pair are each read once."""
    every = {sku_id for sku_ids in wanted.values() for sku_id in sku_ids}
    if not every:
        return {}
    parts = await bundle_parts(session, every)
    components = {component for items in parts.values() for component, _ in items}
    shared = await stock_for(session, every | components, now=now, parts=parts)
    pairs = {
        (channel_id, sku_id)
        for channel_id, sku_ids in wanted.items()
        for sku_id in {*sku_ids, *(component for s in sku_ids for component, _ in parts.get(s, ()))}
    }
    caps = await quotas_for(session, sorted(pairs))

    def left(channel_id: int, sku_id: int) -> int | None:
        quota = caps.get((channel_id, sku_id))
        return quota.remaining if quota is not None else None

    def figures(channel_id: int, sku_id: int) -> StockFigures:
        if sku_id in parts and all(per == DRAWN for _, per in parts[sku_id]):
            drawn = box_stock(channel_stock(shared[c], left(channel_id, c)) for c, _ in parts[sku_id])
            return channel_stock(drawn, left(channel_id, sku_id))
        if sku_id in parts:
            items = [(shared[c], left(channel_id, c), per_bundle) for c, per_bundle in parts[sku_id]]
            return channel_bundle_stock(items, left(channel_id, sku_id))
        return channel_stock(shared[sku_id], left(channel_id, sku_id))

    return {
        channel_id: {sku_id: figures(channel_id, sku_id) for sku_id in sku_ids if sku_id in shared}
        for channel_id, sku_ids in wanted.items()
    }


async def channel_stock_of(
    session: AsyncSession, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], StockFigures]:
    """channel_stock_for() keyed by (channel id, SKU id) pairs, as a DataLoader asks."""
    wanted: dict[int, set[int]] = defaultdict(set)
    for channel_id, sku_id in keys:
        wanted[channel_id].add(sku_id)
    found = await channel_stock_for(session, wanted)
    return {(channel_id, sku_id): figures for channel_id, by_sku in found.items() for sku_id, figures in by_sku.items()}
