"""A top-up SKU's counter stock, spread over slots that orders claim independently.

One counter row that every order updates makes the SKU's orders queue: each holds the row
from its UPDATE to its COMMIT. Here the stock is spread over the SKU's slots (domain/slots.py)
and an order takes its units from one slot, so orders on different slots pass each other:

1. One statement takes the units from a slot with enough, chosen at random among them,
   first skipping slots that other orders hold (`FOR UPDATE SKIP LOCKED`), and only when
   every slot with enough is held, waiting for one of them (PostgreSQL checks it again
   after the wait and moves on to the next if it no longer has enough). The two picks are
   the arguments of one COALESCE: PostgreSQL runs the second sub-select only when the
   first finds nothing.
2. Only when no single slot holds enough, an order takes them from several: it locks every
   slot of the SKU in slot order and draws from them in that order. Slot order is the order
   every statement holding more than one slot of a SKU takes them (this one, setting the
   stock, releasing and selling), and an order holds at most one slot of a SKU otherwise,
   so none of them can deadlock with another.

An order is refused only when all the SKU's slots together hold fewer units than it wants.
Its allocations name their slots: releasing an order returns the units there, and the
fulfilment's sale takes them from there. The SKU's figures are sums over its slots
(`TOTALS`). On SQLite a write transaction holds the whole database, so the same statements
simply run one order after another.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from domain.slots import draw, spread
from models import Allocation, StockLevel
from services.core.database import rows_changed

HELD, SOLD = "HELD", "SOLD"

_SLOT = StockLevel.__table__
_ALLOCATION = Allocation.__table__
_FREE = _SLOT.c.on_hand - _SLOT.c.reserved


def _pick(*, skip_locked: bool):  # type: ignore[no-untyped-def]
    return (
        select(_SLOT.c.slot)
        .where(_SLOT.c.sku_id == bindparam("sku"), _FREE >= bindparam("units"))
        .order_by(func.random())
        .limit(1)
        .with_for_update(skip_locked=skip_locked)
        .scalar_subquery()
    )


# Statements every counter order sends, built once (their cache keys too).
_TAKE_ONE = (
    update(_SLOT)
    .where(_SLOT.c.sku_id == bindparam("sku"), _FREE >= bindparam("units"),
           _SLOT.c.slot == func.coalesce(_pick(skip_locked=True), _pick(skip_locked=False)))
    .values(reserved=_SLOT.c.reserved + bindparam("units"))
    .returning(_SLOT.c.slot)
)
_LOCK_ALL = (
    select(_SLOT.c.slot, _FREE).where(_SLOT.c.sku_id == bindparam("sku")).order_by(_SLOT.c.slot).with_for_update()
)
_TAKE_FROM = (
    update(_SLOT)
    .where(_SLOT.c.sku_id == bindparam("sku"), _SLOT.c.slot == bindparam("at"), _FREE >= bindparam("units"))
    .values(reserved=_SLOT.c.reserved + bindparam("units"))
)
_GIVE_BACK = (
    update(_SLOT)
    .where(_SLOT.c.sku_id == bindparam("sku"), _SLOT.c.slot == bindparam("at"), _SLOT.c.reserved >= bindparam("units"))
    .values(reserved=_SLOT.c.reserved - bindparam("units"))
)
_SELL_HELD = (
    update(_ALLOCATION)
    .where(_ALLOCATION.c.line_id == bindparam("line"), _ALLOCATION.c.sku_id == bindparam("sku"),
           _ALLOCATION.c.source == "COUNTER", _ALLOCATION.c.state == HELD)
    .values(state=SOLD)
    .returning(_ALLOCATION.c.slot, _ALLOCATION.c.units)
)
_SELL = (
    update(_SLOT)
    .where(_SLOT.c.sku_id == bindparam("sku"), _SLOT.c.slot == bindparam("at"),
           _SLOT.c.reserved >= bindparam("units"), _SLOT.c.on_hand >= bindparam("units"))
    .values(on_hand=_SLOT.c.on_hand - bindparam("units"), reserved=_SLOT.c.reserved - bindparam("units"))
)

# The SKUs' figures: sums over their slots.
TOTALS = (
    select(_SLOT.c.sku_id, func.sum(_SLOT.c.on_hand).label("on_hand"), func.sum(_SLOT.c.reserved).label("reserved"))
    .where(_SLOT.c.sku_id.in_(bindparam("skus", expanding=True)))
    .group_by(_SLOT.c.sku_id)
)


async def take(session: AsyncSession, line_id: int, sku_id: int, units: int) -> int:
    """Hold `units` of the SKU's counter stock for a line, all or nothing: units taken."""
    connection = await session.connection()
    slot = (await connection.execute(_TAKE_ONE, {"sku": sku_id, "units": units})).scalar_one_or_none()
    if slot is not None:
        plan = [(slot, units)]
    elif units > 1:
        # No one slot holds enough: several, locked and drawn in slot order.
        free = [(row[0], row[1]) for row in await connection.execute(_LOCK_ALL, {"sku": sku_id})]
        plan = draw(free, units)
        for at, part in plan:
            changed = await connection.execute(_TAKE_FROM, {"sku": sku_id, "at": at, "units": part})
            assert rows_changed(changed) == 1, "a locked slot changed under its lock"
    else:
        plan = []
    session.add_all(
        Allocation(line_id=line_id, sku_id=sku_id, code_id=None, units=part, state=HELD, source="COUNTER", slot=at)
        for at, part in plan
    )
    return units if plan else 0


async def give_back(session: AsyncSession, held: Iterable[tuple[int, int | None, int]]) -> None:
    """Return released (sku, slot, units) to their slots, in (SKU, slot) order."""
    totals: dict[tuple[int, int], int] = {}
    for sku_id, slot, units in held:
        key = (sku_id, slot or 0)
        totals[key] = totals.get(key, 0) + units
    connection = await session.connection()
    for (sku_id, slot), units in sorted(totals.items()):
        await connection.execute(_GIVE_BACK, {"sku": sku_id, "at": slot, "units": units})


async def sell_held(connection: AsyncConnection, line_id: int, sku_id: int) -> None:
    """The supplier credited the buyer: the line's held units are sold from their slots
    (on hand and reserved shrink there)."""
    sold = (await connection.execute(_SELL_HELD, {"line": line_id, "sku": sku_id})).all()
    totals: dict[int, int] = {}
    for slot, units in sold:
        totals[slot or 0] = totals.get(slot or 0, 0) + units
    for slot, units in sorted(totals.items()):
        await connection.execute(_SELL, {"sku": sku_id, "at": slot, "units": units})


async def rebalance(session: AsyncSession, sku_id: int, on_hand: int, slots: int) -> int | None:
    """Set the SKU's total on hand, spread over `slots` slots, in one transaction holding
    all of them (locked in slot order). Returns None when done, or the units open orders
    hold when `on_hand` is below them (then nothing changes)."""
    connection = await session.connection()
    reserved = {
        slot: held for slot, held in await connection.execute(
            select(_SLOT.c.slot, _SLOT.c.reserved).where(_SLOT.c.sku_id == sku_id)
            .order_by(_SLOT.c.slot).with_for_update()
        )
    }
    if sum(reserved.values()) > on_hand:
        return sum(reserved.values())
    target = spread(on_hand, reserved, slots)
    for slot in sorted(set(reserved) | set(target)):
        if slot not in target:
            await connection.execute(delete(_SLOT).where(_SLOT.c.sku_id == sku_id, _SLOT.c.slot == slot))
        elif slot in reserved:
            await connection.execute(
                update(_SLOT).where(_SLOT.c.sku_id == sku_id, _SLOT.c.slot == slot).values(on_hand=target[slot])
            )
        else:
            await connection.execute(insert(_SLOT).values(sku_id=sku_id, slot=slot, on_hand=target[slot], reserved=0))
    return None


def laid_out(sku_id: int, on_hand: int, slots: int) -> list[dict[str, int]]:
    """The rows of a new SKU's counter stock: `on_hand` spread over `slots` empty slots."""
    return [
        {"sku_id": sku_id, "slot": slot, "on_hand": units, "reserved": 0}
        for slot, units in spread(on_hand, {}, slots).items()
    ]
