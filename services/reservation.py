"""Taking stock for an order line, and giving it back, as single atomic statements.

Every reservation is a conditional UPDATE the database decides on its own: on
PostgreSQL codes are claimed with `FOR UPDATE SKIP LOCKED`, so concurrent buyers
take different codes without waiting on each other; on SQLite the whole order runs
in one write transaction (BEGIN IMMEDIATE). Nothing is read into Python, checked
and written back, so two buyers can never both take the last unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import CodeStatus, SkuKind
from models import Allocation, BundleItem, CardCode, Sku, StockLevel

HELD, PRESALE, SOLD, RELEASED = "HELD", "PRESALE", "SOLD", "RELEASED"


class OutOfStock(Exception):
    def __init__(self, sku_id: int) -> None:
        super().__init__(f"SKU {sku_id} is out of stock")
        self.sku_id = sku_id


async def reserve(session: AsyncSession, line_id: int, sku: Sku, quantity: int, now: datetime) -> int:
    """Reserve `quantity` units of `sku` for a line; returns the units taken on presale.

    Raises OutOfStock when neither stock nor presale headroom covers the quantity; the
    caller rolls the whole order back, so a partial reservation never survives.
    """
    if sku.kind is SkuKind.BUNDLE:
        parts = (
            await session.execute(
                select(Sku, BundleItem.quantity)
                .join(BundleItem, BundleItem.component_sku_id == Sku.id)
                .where(BundleItem.bundle_sku_id == sku.id)
                .order_by(Sku.id)
            )
        ).all()
        if not parts:
            raise OutOfStock(sku.id)
        for component, per_bundle in parts:
            if component.kind is SkuKind.BUNDLE:
                raise OutOfStock(sku.id)  # bundles of bundles are not sold
            # All or nothing: a bundle never waits on presale for one of its parts.
            await _reserve_now(session, line_id, component, quantity * per_bundle, now, strict=True)
        return 0
    taken = await _reserve_now(session, line_id, sku, quantity, now, strict=sku.presale_cap == 0)
    missing = quantity - taken
    if missing == 0:
        return 0
    return await _presale(session, line_id, sku, missing)


async def _reserve_now(
    session: AsyncSession, line_id: int, sku: Sku, quantity: int, now: datetime, *, strict: bool
) -> int:
    if sku.kind is SkuKind.DIRECT_RECHARGE:
        taken = await _counter(session, line_id, sku, quantity)
    elif sku.kind is SkuKind.SERIAL:
        taken = await _serial_uses(session, line_id, sku, quantity, now)
    else:
        taken = await _codes(session, line_id, sku, quantity, now)
    if strict and taken < quantity:
        raise OutOfStock(sku.id)
    return taken


def _sellable(sku_id: int, now: datetime) -> list:
    return [
        CardCode.sku_id == sku_id,
        CardCode.status == CodeStatus.AVAILABLE,
        CardCode.uses_left > 0,
        or_(CardCode.expires_at.is_(None), CardCode.expires_at > now),
    ]


async def _codes(session: AsyncSession, line_id: int, sku: Sku, quantity: int, now: datetime) -> int:
    # SKIP LOCKED: concurrent buyers take different codes instead of queueing on the same rows.
    candidates = (
        select(CardCode.id)
        .where(*_sellable(sku.id, now))
        .order_by(CardCode.id)
        .limit(quantity)
        .with_for_update(skip_locked=True)
    )
    claimed = list(
        await session.scalars(
            update(CardCode)
            .where(CardCode.id.in_(candidates.scalar_subquery()), CardCode.status == CodeStatus.AVAILABLE)
            .values(status=CodeStatus.RESERVED, order_line_id=line_id)
            .returning(CardCode.id)
        )
    )
    if claimed:
        session.add_all(
            Allocation(line_id=line_id, sku_id=sku.id, code_id=code_id, units=1, state=HELD, source="CODE")
            for code_id in claimed
        )
    return len(claimed)


async def _serial_uses(session: AsyncSession, line_id: int, sku: Sku, quantity: int, now: datetime) -> int:
    """Uses of serials: each unit sold is one activation of a serial with uses left."""
    taken = 0
    while taken < quantity:
        serial = await session.scalar(
            select(CardCode.id).where(*_sellable(sku.id, now)).order_by(CardCode.id).limit(1)
            .with_for_update(skip_locked=True)
        )
        if serial is None:
            break
        uses = await session.scalar(select(CardCode.uses_left).where(CardCode.id == serial))
        take = min(uses or 0, quantity - taken)
        if take <= 0:
            continue
        result = await session.execute(
            update(CardCode)
            .where(CardCode.id == serial, CardCode.uses_left >= take)
            .values(uses_left=CardCode.uses_left - take)
        )
        if result.rowcount != 1:
            continue
        session.add(Allocation(line_id=line_id, sku_id=sku.id, code_id=serial, units=take, state=HELD, source="SERIAL"))
        taken += take
    return taken


async def _counter(session: AsyncSession, line_id: int, sku: Sku, quantity: int) -> int:
    result = await session.execute(
        update(StockLevel)
        .where(StockLevel.sku_id == sku.id, StockLevel.on_hand - StockLevel.reserved >= quantity)
        .values(reserved=StockLevel.reserved + quantity)
    )
    if result.rowcount != 1:
        return 0
    session.add(Allocation(line_id=line_id, sku_id=sku.id, code_id=None, units=quantity, state=HELD, source="COUNTER"))
    return quantity


async def _presale(session: AsyncSession, line_id: int, sku: Sku, missing: int) -> int:
    result = await session.execute(
        update(Sku)
        .where(Sku.id == sku.id, Sku.presale_cap - Sku.presale_used >= missing)
        .values(presale_used=Sku.presale_used + missing)
    )
    if result.rowcount != 1:
        raise OutOfStock(sku.id)
    session.add(Allocation(line_id=line_id, sku_id=sku.id, code_id=None, units=missing, state=PRESALE, source="PRESALE"))
    return missing


async def release(session: AsyncSession, line_ids: Sequence[int]) -> list[int]:
    """Give back everything the lines hold; returns the SKU ids whose stock changed.

    Call only from the transaction that moved the order out of a holding status
    (a conditional UPDATE on the order), so the stock comes back exactly once.
    """
    held = list(
        await session.scalars(
            select(Allocation).where(Allocation.line_id.in_(line_ids), Allocation.state.in_((HELD, PRESALE)))
        )
    )
    for allocation in held:
        if allocation.source == "CODE":
            await session.execute(
                update(CardCode)
                .where(CardCode.id == allocation.code_id, CardCode.status == CodeStatus.RESERVED)
                .values(status=CodeStatus.AVAILABLE, order_line_id=None)
            )
        elif allocation.source == "SERIAL":
            await session.execute(
                update(CardCode).where(CardCode.id == allocation.code_id).values(uses_left=CardCode.uses_left + allocation.units)
            )
        elif allocation.source == "COUNTER":
            await session.execute(
                update(StockLevel)
                .where(StockLevel.sku_id == allocation.sku_id, StockLevel.reserved >= allocation.units)
                .values(reserved=StockLevel.reserved - allocation.units)
            )
        else:
            await session.execute(
                update(Sku)
                .where(Sku.id == allocation.sku_id, Sku.presale_used >= allocation.units)
                .values(presale_used=Sku.presale_used - allocation.units)
            )
        allocation.state = RELEASED
    await session.flush()
    return sorted({a.sku_id for a in held})
