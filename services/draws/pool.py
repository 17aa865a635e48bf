"""A box's pool as operators set it, and its rounds as they close: the box's published rules.

The pool (items and weights) can change until the box's first unit is drawn, then never:
the change and the draws both take the open round's row (FOR UPDATE here, FOR SHARE in a
draw), so a change either lands before a first draw or sees it and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import SkuKind
from domain.draws import MAX_POOL, MAX_WEIGHT
from models import BlindBoxItem, BoxDraw, DrawRound, Sku
from models.draws import CLOSED, OPEN
from services.core.secret_box import SecretBox
from services.draws.boxes import DRAWABLE
from services.draws.seeds import open_round


@dataclass(frozen=True, slots=True)
class PoolItem:
    sku_id: int
    weight: int


@dataclass(frozen=True, slots=True)
class PoolRefusal:
    field: str | None
    message: str
    code: str


async def set_pool(
    session: AsyncSession, seeds: SecretBox, box_sku_id: int, items: list[PoolItem], now: datetime,
) -> PoolRefusal | None:
    """Replace the box's items and weights (published in the given order); the first pool
    also opens the box's first round, so its commitment is public before any sale."""
    if not 1 <= len(items) <= MAX_POOL:
        return PoolRefusal("items", f"a box holds 1 to {MAX_POOL} SKUs", "INVALID_INPUT")
    seen: set[int] = set()
    for index, item in enumerate(items):
        if item.sku_id in seen:
            return PoolRefusal(f"items.{index}.skuId", "each SKU once", "DUPLICATE")
        seen.add(item.sku_id)
        if not 1 <= item.weight <= MAX_WEIGHT:
            return PoolRefusal(f"items.{index}.weight", f"a weight is a whole number from 1 to {MAX_WEIGHT}", "INVALID_INPUT")
    box = await session.get(Sku, box_sku_id)
    if box is None or box.kind is not SkuKind.BLIND_BOX:
        return PoolRefusal("skuId", "no such blind box", "NOT_FOUND")
    found = {sku.id: sku for sku in await session.scalars(select(Sku).where(Sku.id.in_(seen)))}
    for index, item in enumerate(items):
        sku = found.get(item.sku_id)
        if sku is None or sku.archived_at is not None:
            return PoolRefusal(f"items.{index}.skuId", "no such SKU", "NOT_FOUND")
        if sku.kind not in DRAWABLE:
            return PoolRefusal(f"items.{index}.skuId", "a box holds codes, serials and top-ups", "INVALID_FOR_KIND")
        if sku.currency != box.currency:
            return PoolRefusal(f"items.{index}.skuId", f"the SKU is sold in {sku.currency}", "CURRENCY_MISMATCH")
    current = await session.scalar(
        select(DrawRound).where(DrawRound.box_sku_id == box_sku_id, DrawRound.status == OPEN).with_for_update()
    )
    if await session.scalar(select(exists().where(BoxDraw.box_sku_id == box_sku_id))):
        return PoolRefusal("items", "the box has sold: its items and weights are frozen", "POOL_FROZEN")
    await session.execute(delete(BlindBoxItem).where(BlindBoxItem.box_sku_id == box_sku_id))
    session.add_all(
        BlindBoxItem(box_sku_id=box_sku_id, item_sku_id=item.sku_id, weight=item.weight, position=position)
        for position, item in enumerate(items)
    )
    if current is None:
        await open_round(session, seeds, box_sku_id, now)
    await session.flush()
    return None


async def close_round(session: AsyncSession, seeds: SecretBox, box_sku_id: int, now: datetime) -> DrawRound | None:
    """Close the box's open round (its seed is revealed once its draws are settled) and open
    the next, whose commitment is published at once. None: the box has no open round."""
    current = await session.scalar(
        select(DrawRound).where(DrawRound.box_sku_id == box_sku_id, DrawRound.status == OPEN).with_for_update()
    )
    if current is None:
        return None
    current.status, current.closed_at = CLOSED, now
    await session.flush()
    await open_round(session, seeds, box_sku_id, now)
    return current
