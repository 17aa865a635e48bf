"""Counter stock of a direct top-up SKU: how many units its suppliers can still deliver.

Setting what is on hand spreads it again over the SKU's slots (services/inventory/slots.py),
holding all of them meanwhile: never below what open orders hold (`reserved`), whatever
they reserve meanwhile.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import SkuKind
from domain.slots import DEFAULT_SLOTS
from models import Sku
from services.inventory.slots import rebalance

MAX_ON_HAND = 100_000_000


class CounterRefused(ValueError):
    def __init__(self, field: str, message: str, code: str) -> None:
        super().__init__(message)
        self.field, self.message, self.code = field, message, code


async def set_on_hand(session: AsyncSession, sku_id: int, on_hand: int, slots: int = DEFAULT_SLOTS) -> None:
    """Set the SKU's units on hand, spread again over `slots` slots (slots.rebalance)."""
    if not 0 <= on_hand <= MAX_ON_HAND:
        raise CounterRefused("onHand", f"from 0 to {MAX_ON_HAND}", "OUT_OF_RANGE")
    kind = await session.scalar(select(Sku.kind).where(Sku.id == sku_id, Sku.archived_at.is_(None)))
    if kind is None:
        raise CounterRefused("skuId", "no such SKU", "NOT_FOUND")
    if kind is not SkuKind.DIRECT_RECHARGE:
        raise CounterRefused("skuId", "only a DIRECT_RECHARGE SKU has counter stock; code SKUs get codes", "INVALID_FOR_KIND")
    reserved = await rebalance(session, sku_id, on_hand, slots)
    if reserved is not None:
        raise CounterRefused("onHand", f"open orders hold {reserved} units: at least that many", "BELOW_RESERVED")
