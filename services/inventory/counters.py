"""Counter stock of a direct top-up SKU: how many units its suppliers can still deliver.

Setting what is on hand is one conditional statement: never below what open orders hold
(`reserved`), whatever they reserve meanwhile.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import SkuKind
from models import Sku, StockLevel
from services.core.database import rows_changed

MAX_ON_HAND = 100_000_000


class CounterRefused(ValueError):
    def __init__(self, field: str, message: str, code: str) -> None:
        super().__init__(message)
        self.field, self.message, self.code = field, message, code


async def set_on_hand(session: AsyncSession, sku_id: int, on_hand: int) -> StockLevel:
    if not 0 <= on_hand <= MAX_ON_HAND:
        raise CounterRefused("onHand", f"from 0 to {MAX_ON_HAND}", "OUT_OF_RANGE")
    kind = await session.scalar(select(Sku.kind).where(Sku.id == sku_id, Sku.archived_at.is_(None)))
    if kind is None:
        raise CounterRefused("skuId", "no such SKU", "NOT_FOUND")
    if kind is not SkuKind.DIRECT_RECHARGE:
        raise CounterRefused("skuId", "only a DIRECT_RECHARGE SKU has counter stock; code SKUs get codes", "INVALID_FOR_KIND")
    result = await session.execute(
        update(StockLevel).where(StockLevel.sku_id == sku_id, StockLevel.reserved <= on_hand)
        .values(on_hand=on_hand).execution_options(synchronize_session=False)
    )
    if rows_changed(result) != 1:
        reserved = await session.scalar(select(StockLevel.reserved).where(StockLevel.sku_id == sku_id))
        if reserved is not None:
            raise CounterRefused("onHand", f"open orders hold {reserved} units: at least that many", "BELOW_RESERVED")
        session.add(StockLevel(sku_id=sku_id, on_hand=on_hand, reserved=0))
        await session.flush()
    level = await session.scalar(
        select(StockLevel).where(StockLevel.sku_id == sku_id).execution_options(populate_existing=True)
    )
    assert level is not None
    return level
