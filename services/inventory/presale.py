"""Presale: units ordered before codes existed get codes first-in first-out as codes arrive.

A waiting unit is an Allocation in state PRESALE. Serving one claims codes the way a
reservation does (AVAILABLE -> RESERVED with SKIP LOCKED, one HELD allocation per code,
or uses of a serial), shrinks the presale row, and gives the units back to the SKU's
presale headroom. The order rows are locked first, in allocation order, as cancelling
and expiring lock them: whichever runs second sees what the first left.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.orders import OrderStatus
from models import Allocation, Order, OrderLine, Sku
from services.core import jobs
from services.inventory.reservation import PRESALE, take_codes

# A presale row whose units all have codes now; release() leaves it alone.
SERVED = "SERVED"

# Orders still waiting for what they bought: unpaid ones hold a reservation,
# paid ones are owed their codes.
WAITING = (
    OrderStatus.PENDING_RISK,
    OrderStatus.REVIEW,
    OrderStatus.PENDING_PAYMENT,
    OrderStatus.PAID,
    OrderStatus.FULFILLING,
)
_CHUNK = 100


async def serve_presale(session: AsyncSession, sku: Sku, now: datetime) -> list[int]:
    """Give the oldest waiting presale units of `sku` the codes on hand; returns the lines served."""
    served: list[int] = []
    total = 0
    while True:
        waiting = list(
            await session.scalars(
                select(Allocation.id)
                .join(OrderLine, OrderLine.id == Allocation.line_id)
                .join(Order, Order.id == OrderLine.order_id)
                .where(
                    Allocation.sku_id == sku.id,
                    Allocation.state == PRESALE,
                    Order.status.in_(WAITING),
                )
                .order_by(Allocation.id)
                .limit(_CHUNK)
                .with_for_update(of=Order)
            )
        )
        if not waiting:
            break
        # Read again now that the orders are locked: a cancellation that committed
        # while we waited has released these rows.
        allocations = list(
            await session.scalars(
                select(Allocation)
                .where(Allocation.id.in_(waiting), Allocation.state == PRESALE)
                .order_by(Allocation.id)
            )
        )
        dry = False
        for allocation in allocations:
            taken = await take_codes(session, allocation.line_id, sku, allocation.units, now)
            if taken:
                total += taken
                served.append(allocation.line_id)
                allocation.units -= taken
                if allocation.units == 0:
                    allocation.state = SERVED
                await session.execute(
                    update(OrderLine)
                    .where(OrderLine.id == allocation.line_id)
                    .values(presale_quantity=OrderLine.presale_quantity - taken)
                )
            if allocation.units > 0:
                dry = True  # the pool ran out: this line and later ones keep waiting
                break
        if dry or len(waiting) < _CHUNK:
            break
    if total:
        await session.execute(
            update(Sku)
            .where(Sku.id == sku.id, Sku.presale_used >= total)
            .values(presale_used=Sku.presale_used - total)
        )
        await session.flush()
        await _wake_paid_orders(session, served, now)
    return sorted(set(served))


async def _wake_paid_orders(session: AsyncSession, line_ids: list[int], now: datetime) -> None:
    """Paid orders whose presale lines just got codes: their fulfilment delivers them now."""
    paid = await session.scalars(
        select(Order.id).join(OrderLine, OrderLine.order_id == Order.id)
        .where(OrderLine.id.in_(set(line_ids)), Order.status.in_((OrderStatus.PAID, OrderStatus.FULFILLING)))
        .distinct()
    )
    for order_id in paid:
        await jobs.enqueue(session, jobs.FULFIL, jobs.request_fulfilment_key(order_id), now=now, order_id=order_id)


