"""Taking stock for an order line, and giving it back, as single atomic statements.

Every reservation is decided by the database: counters (a slot of them, slots.py) and
presale headroom by a conditional UPDATE; codes are locked as they are chosen (PostgreSQL: `FOR UPDATE SKIP
LOCKED`, so concurrent buyers take different codes without waiting on each other) and
claimed by an UPDATE that checks them again. On SQLite the whole order runs in one
write transaction (BEGIN IMMEDIATE). Nothing is read into Python, checked and written
back unlocked, so two buyers can never both take the last unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import CodeStatus, SkuKind
from models import Allocation, BundleItem, CardCode, Sku
from services.core.database import rows_changed
from services.inventory import slots

HELD, PRESALE, SOLD, RELEASED = "HELD", "PRESALE", "SOLD", "RELEASED"


class OutOfStock(Exception):
    """`empty`: the line's own SKU has no unit left at all (not merely fewer than asked)."""

    def __init__(self, sku_id: int, line_id: int | None = None, *, empty: bool = False) -> None:
        super().__init__(f"SKU {sku_id} is out of stock")
        self.sku_id, self.line_id, self.empty = sku_id, line_id, empty


@dataclass(frozen=True, slots=True)
class Want:
    """What one order line asks for."""

    line_id: int
    sku: Sku
    quantity: int


@dataclass
class Reserved:
    presale: dict[int, int] = field(default_factory=dict)  # units on presale, by line id
    sku_ids: set[int] = field(default_factory=set)  # every SKU whose stock moved


async def reserve(session: AsyncSession, wants: Sequence[Want], now: datetime) -> Reserved:
    """Reserve what every line asks for, all or nothing.

    Raises OutOfStock (naming the line) when neither stock nor presale headroom covers
    a line; the caller rolls the whole order back, so a partial reservation never
    survives. Rows that make a buyer wait (counters, presale headroom) are taken in one
    global order, stock by SKU id and then presale by SKU id, so two orders naming the
    same SKUs queue behind each other on PostgreSQL instead of deadlocking.
    """
    steps: list[tuple[Sku, Want, int, bool]] = []  # (SKU to draw from, line, units, all or nothing)
    for want in wants:
        if want.sku.kind is not SkuKind.BUNDLE:
            steps.append((want.sku, want, want.quantity, want.sku.presale_cap == 0))
            continue
        parts = (
            await session.execute(
                select(Sku, BundleItem.quantity)
                .join(BundleItem, BundleItem.component_sku_id == Sku.id)
                .where(BundleItem.bundle_sku_id == want.sku.id)
            )
        ).all()
        if not parts or any(component.kind is SkuKind.BUNDLE for component, _ in parts):
            raise OutOfStock(want.sku.id, want.line_id)  # bundles of bundles are not sold
        # All or nothing: a bundle never waits on presale for one of its parts.
        steps.extend((component, want, want.quantity * per_bundle, True) for component, per_bundle in parts)

    reserved = Reserved()
    missing: list[tuple[Want, int]] = []
    for sku, want, units, strict in sorted(steps, key=lambda step: (step[0].id, step[1].line_id)):
        taken = await take_now(session, want.line_id, sku, units, now)
        if taken < units and strict:
            # A counter refuses all or nothing: only a refused single unit says it is empty.
            empty = sku.id == want.sku.id and taken == 0 and (sku.kind is not SkuKind.DIRECT_RECHARGE or units == 1)
            raise OutOfStock(sku.id, want.line_id, empty=empty)
        if taken < units:
            missing.append((want, units - taken))
        reserved.sku_ids.add(sku.id)
    for want, units in sorted(missing, key=lambda pair: pair[0].sku.id):
        if not await _presale(session, want.line_id, want.sku, units):
            raise OutOfStock(want.sku.id, want.line_id)
        reserved.presale[want.line_id] = units
    return reserved


async def take_now(session: AsyncSession, line_id: int, sku: Sku, quantity: int, now: datetime) -> int:
    """Units taken from stock on hand, at most `quantity`, held for the line."""
    if sku.kind is SkuKind.DIRECT_RECHARGE:
        return await slots.take(session, line_id, sku.id, quantity)
    return await take_codes(session, line_id, sku, quantity, now)


async def take_codes(session: AsyncSession, line_id: int, sku: Sku, quantity: int, now: datetime) -> int:
    """Hold up to `quantity` units of a code pool for a line: codes, or uses of serials."""
    if sku.kind is SkuKind.SERIAL:
        return await _serial_uses(session, line_id, sku, quantity, now)
    return await _codes(session, line_id, sku, quantity, now)


def _sellable(sku_id: int, now: datetime) -> list:
    return [
        CardCode.sku_id == sku_id,
        CardCode.status == CodeStatus.AVAILABLE,
        CardCode.uses_left > 0,
        or_(CardCode.expires_at.is_(None), CardCode.expires_at > now),
    ]


async def _codes(session: AsyncSession, line_id: int, sku: Sku, quantity: int, now: datetime) -> int:
    # SKIP LOCKED: concurrent buyers take different codes instead of queueing on the same rows.
    # Two statements on purpose: inside `UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE
    # SKIP LOCKED)` PostgreSQL may run the subquery again for each row, and each run skips
    # the rows the UPDATE has just changed, so it would claim every code of the SKU.
    candidates = list(
        await session.scalars(
            select(CardCode.id)
            .where(*_sellable(sku.id, now))
            .order_by(CardCode.id)
            .limit(quantity)
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
        if rows_changed(result) != 1:
            continue
        session.add(Allocation(line_id=line_id, sku_id=sku.id, code_id=serial, units=take, state=HELD, source="SERIAL"))
        taken += take
    return taken


async def _presale(session: AsyncSession, line_id: int, sku: Sku, missing: int) -> bool:
    result = await session.execute(
        update(Sku)
        .where(Sku.id == sku.id, Sku.presale_cap - Sku.presale_used >= missing)
        .values(presale_used=Sku.presale_used + missing)
        .execution_options(synchronize_session=False)
    )
    if rows_changed(result) != 1:
        return False
    session.add(Allocation(line_id=line_id, sku_id=sku.id, code_id=None, units=missing, state=PRESALE, source="PRESALE"))
    return True


async def release(session: AsyncSession, line_ids: Sequence[int]) -> list[int]:
    """Give back everything the lines hold; returns the SKU ids whose stock changed.

    Each allocation leaves HELD or PRESALE in the one statement that claims it here, so
    of two releases racing for the same lines only one returns the stock. Waiting rows
    are taken in reserve()'s order: stock by SKU id, then presale headroom by SKU id.
    """
    if not line_ids:
        return []
    held = (
        await session.execute(
            update(Allocation)
            .where(Allocation.line_id.in_(line_ids), Allocation.state.in_((HELD, PRESALE)))
            .values(state=RELEASED)
            .returning(Allocation.sku_id, Allocation.code_id, Allocation.units, Allocation.source, Allocation.slot)
            .execution_options(synchronize_session=False)
        )
    ).all()
    codes = sorted(code_id for _, code_id, _, source, _ in held if source == "CODE" and code_id is not None)
    if codes:
        await session.execute(
            update(CardCode)
            .where(CardCode.id.in_(codes), CardCode.status == CodeStatus.RESERVED)
            .values(status=CodeStatus.AVAILABLE, order_line_id=None)
            .execution_options(synchronize_session=False)
        )
    serials = sorted((sku_id, code_id, units) for sku_id, code_id, units, source, _ in held if source == "SERIAL")
    for _, code_id, units in serials:
        await session.execute(
            update(CardCode)
            .where(CardCode.id == code_id)
            .values(uses_left=CardCode.uses_left + units)
            .execution_options(synchronize_session=False)
        )
    # Counter units go back to the slots their allocations name.
    await slots.give_back(session, ((sku_id, slot, units) for sku_id, _, units, source, slot in held if source == "COUNTER"))
    for sku_id, units in _per_sku(held, "PRESALE"):
        await session.execute(
            update(Sku)
            .where(Sku.id == sku_id, Sku.presale_used >= units)
            .values(presale_used=Sku.presale_used - units)
            .execution_options(synchronize_session=False)
        )
    return sorted({sku_id for sku_id, *_ in held})


async def line_skus(session: AsyncSession, line_id: int) -> list[int]:
    """The SKUs whose stock a line draws on: its own, or a bundle's components."""
    return sorted(set(await session.scalars(select(Allocation.sku_id).where(Allocation.line_id == line_id))))


def _per_sku(held: Sequence[tuple[int, int | None, int, str, int | None]], source: str) -> list[tuple[int, int]]:
    totals: dict[int, int] = {}
    for sku_id, _, units, kind, _ in held:
        if kind == source:
            totals[sku_id] = totals.get(sku_id, 0) + units
    return sorted(totals.items())
