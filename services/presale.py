"""Presale: units ordered before codes existed get codes first-in first-out as codes arrive.

A waiting unit is an Allocation in state PRESALE. Serving one claims codes the way a
reservation does (AVAILABLE -> RESERVED with SKIP LOCKED, one HELD allocation per code,
or uses of a serial), shrinks the presale row, and gives the units back to the SKU's
presale headroom. The order rows are locked first, in allocation order, as cancelling
and expiring lock them: whichever runs second sees what the first left.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import CodeStatus, SkuKind
from domain.orders import OrderStatus
from models import Allocation, CardCode, Order, OrderLine, Sku
from services.reservation import HELD, PRESALE

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
            taken = await _claim(session, sku, allocation.line_id, allocation.units, now)
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
    return sorted(set(served))


def _sellable(sku_id: int, now: datetime) -> list:
    return [
        CardCode.sku_id == sku_id,
        CardCode.status == CodeStatus.AVAILABLE,
        CardCode.uses_left > 0,
        or_(CardCode.expires_at.is_(None), CardCode.expires_at > now),
    ]


async def _claim(session: AsyncSession, sku: Sku, line_id: int, units: int, now: datetime) -> int:
    if sku.kind is SkuKind.SERIAL:
        return await _serial_uses(session, sku, line_id, units, now)
    # SKIP LOCKED: a buyer reserving at the same moment takes other codes. Two statements:
    # as a subquery of the UPDATE, PostgreSQL may run the locking SELECT again per row.
    candidates = list(
        await session.scalars(
            select(CardCode.id)
            .where(*_sellable(sku.id, now))
            .order_by(CardCode.id)
            .limit(units)
            .with_for_update(skip_locked=True)
        )
    )
    if not candidates:
        return 0
    claimed = list(
        await session.scalars(
            update(CardCode)
            .where(CardCode.id.in_(candidates), CardCode.status == CodeStatus.AVAILABLE)
            .values(status=CodeStatus.RESERVED, order_line_id=line_id)
            .returning(CardCode.id)
            .execution_options(synchronize_session=False)
        )
    )
    session.add_all(
        Allocation(
            line_id=line_id, sku_id=sku.id, code_id=code_id, units=1, state=HELD, source="CODE"
        )
        for code_id in claimed
    )
    return len(claimed)


async def _serial_uses(
    session: AsyncSession, sku: Sku, line_id: int, units: int, now: datetime
) -> int:
    taken = 0
    while taken < units:
        row = (
            await session.execute(
                select(CardCode.id, CardCode.uses_left)
                .where(*_sellable(sku.id, now))
                .order_by(CardCode.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).first()
        if row is None:
            break
        take = min(row.uses_left, units - taken)
        claimed = await session.scalar(
            update(CardCode)
            .where(CardCode.id == row.id, CardCode.uses_left >= take)
            .values(uses_left=CardCode.uses_left - take)
            .returning(CardCode.id)
            .execution_options(synchronize_session=False)
        )
        if claimed is None:
            continue
        session.add(
            Allocation(
                line_id=line_id,
                sku_id=sku.id,
                code_id=row.id,
                units=take,
                state=HELD,
                source="SERIAL",
            )
        )
        taken += take
    return taken
