"""A top-up SKU's counter stock, spread over slots that orders claim independently.

One counter row that every order updates makes the SKU's orders queue: each holds the row
from its UPDATE to its COMMIT. Here the stock is spread over the SKU's slots (domain/slots.py)
and an order takes its units from one slot, so orders on different slots pass each other:

1. One statement takes the units from a slot with enough that no other order holds,
   chosen at random among them (`FOR UPDATE SKIP LOCKED`): concurrent orders spread over
   the slots without waiting. When it finds none, and all the slots hold fewer units than
   the order wants as it reads them, the order is refused there: rightly, since that read
   is a state the database committed (what other orders hold or give back meanwhile only
   comes after it).
2. When every slot with enough is held by another order, one statement waits for the
   first of them in slot order (PostgreSQL checks it again after the wait and moves on to
   the next if it no longer has enough).
3. Only when neither found a slot, the order locks every slot of the SKU in slot order
   and draws from them in that order (from several when no one holds enough). Once more
   if they hold too few: the steps before read the slots as they were when each began, and
   when one waited for the stock being set, that may have moved units into slots they did
   not see (a slot it added, one that was empty before); after that wait a new statement
   sees them.

A statement that waits must hold no slot of the SKU out of slot order, or two orders
could each wait for a slot the other holds. Yet a statement that finds nothing may keep
locks: PostgreSQL keeps the lock on a row it locked and then found no longer had enough.
So the steps run inside a savepoint, rolled back (its locks with it) before the next step.
Slot order is the order in which every statement that waits for slots takes them (steps 2
and 3, setting the stock, releasing and selling), so none of them can deadlock with another;
an order that took its units from one slot waits for no other slot of that SKU.

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


def take_one(pair: tuple, room, counted, returned, *, waiting: bool):  # type: ignore[no-untyped-def]
    """The statement taking `units` from one slot of a slotted table (this one's, or a quota's:
    services/inventory/quota_slots.py): a slot of the `pair` with `room` for them, at random
    among those no other order holds, or with `waiting` the first in slot order; `counted`
    grows by the units; returns the slot's `returned` column."""
    table = counted.table
    pick = (
        select(table.c.slot)
        .where(*pair, room >= bindparam("units"))
        .order_by(table.c.slot if waiting else func.random())
        .limit(1)
        .with_for_update(skip_locked=not waiting)
        .scalar_subquery()
    )
    return (
        update(table)
        .where(*pair, room >= bindparam("units"), table.c.slot == pick)
        .values({counted.name: counted + bindparam("units")})
        .returning(returned)
    )


def _take_one(*, waiting: bool):  # type: ignore[no-untyped-def]
    return take_one((_SLOT.c.sku_id == bindparam("sku"),), _FREE, _SLOT.c.reserved, _SLOT.c.slot, waiting=waiting)


# Statements every counter order sends, built once (their cache keys too).
_TAKE_ANY, _TAKE_WAITING = _take_one(waiting=False), _take_one(waiting=True)
_FREE_TOTAL = select(func.coalesce(func.sum(_FREE), 0)).where(_SLOT.c.sku_id == bindparam("sku"))
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
    # Only PostgreSQL locks rows: there a step that finds nothing is rolled back before the
    # next, so that the locks it may keep (rows it locked that no longer had enough) are
    # not held out of slot order while the next step waits.
    savepoint = connection.dialect.name == "postgresql"
    if savepoint:
        await connection.exec_driver_sql("SAVEPOINT counter_slot")
    plan: list[tuple[int, int]] = []
    for step in (_TAKE_ANY, _FREE_TOTAL, _TAKE_WAITING, _LOCK_ALL, _LOCK_ALL):
        if step is _FREE_TOTAL:
            if (await connection.execute(_FREE_TOTAL, {"sku": sku_id})).scalar_one() < units:
                break  # refused, rightly: the slots hold too few
            continue
        if savepoint and step is not _TAKE_ANY:
            await connection.exec_driver_sql("ROLLBACK TO SAVEPOINT counter_slot")
        if step is _LOCK_ALL:
            free = [(row[0], row[1]) for row in await connection.execute(_LOCK_ALL, {"sku": sku_id})]
            if plan := draw(free, units):
                for at, part in plan:
                    changed = await connection.execute(_TAKE_FROM, {"sku": sku_id, "at": at, "units": part})
                    assert rows_changed(changed) == 1, "a locked slot changed under its lock"
                break
            continue
        slot = (await connection.execute(step, {"sku": sku_id, "units": units})).scalar_one_or_none()
        if slot is not None:
            plan = [(slot, units)]
            break
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
