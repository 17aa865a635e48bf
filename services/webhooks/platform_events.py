"""The platform's events, for operators' endpoints: a SKU running low, a supplier failing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.analytics import LOW_STOCK_UNITS
from models import Sku
from services.inventory.stock import stock_for
from services.webhooks import events
from services.webhooks.payloads import global_id


async def supplier_failing(session: AsyncSession, code: str, name: str, at: datetime) -> None:
    """A supplier has just failed every call in a row: its top-ups are held back (told once
    per process and outage, by services/fulfilment/supplier_health.py)."""
    await events.emit(session, events.SUPPLIER_FAILING, {"supplier": code, "name": name, "at": events.instant(at)},
                      channel_id=None, now=at)


async def stock_sold(session: AsyncSession, sold: Mapping[int, int], at: datetime) -> None:
    """Units of these SKUs were just sold (SKU id: units): tell of each that this sale took
    to `LOW_STOCK_UNITS` or below, once per crossing rather than at every later sale."""
    endpoints = await events.audience(session, None)
    if not events.listens(endpoints, events.STOCK_LOW):
        return
    stock = await stock_for(session, list(sold), now=at)
    low = {sku_id: figures.available for sku_id, figures in stock.items()
           if figures.available <= LOW_STOCK_UNITS < figures.available + sold[sku_id]}
    if not low:
        return
    for sku_id, code, name in await session.execute(select(Sku.id, Sku.code, Sku.name).where(Sku.id.in_(low))):
        data = {"skuId": global_id("Sku", sku_id), "code": code, "name": name, "available": low[sku_id],
                "threshold": LOW_STOCK_UNITS}
        await events.emit(session, events.STOCK_LOW, data, channel_id=None, now=at, endpoints=endpoints)
