"""A channel's quota on a SKU, spread over slots that orders take from independently.

One quota row that every order of a capped SKU updates makes those orders queue: each holds
the row from its UPDATE to its COMMIT. So a quota is spread over slots as a top-up SKU's
counter stock is (services/inventory/slots.py, whose docstring tells why each step is as it
is): each slot row has its own share of the quota and its own `used`, the channel's quota
is the sum of the shares, what is used the sum of `used` (domain/slots.quota_shares lays
them out). An order takes its units the same way:

1. from one slot with enough room that no other order holds, at random (`SKIP LOCKED`);
   refused when it finds none and the slots together have less room than it wants;
2. else waiting for the first slot with enough in slot order;
3. else locking every slot of the pair in slot order and drawing from several.

On PostgreSQL each step runs inside a savepoint rolled back before the next, so no lock a
step kept is held out of slot order while the next one waits. Every statement that waits
for quota slots (steps 2 and 3, setting the quota, releases) takes them in slot order.
An order's uses (QuotaUse) name the slot rows they took from: a release gives back there.

A quota lowered below what is used leaves every slot without room, some of them over their
share (used > quota). Units given back to one slot must not open room there while others
are still over: the channel would sell again with its total used at or above its quota.
So a release holds all of the pair's slots and, while any is over, lays the pair out again
(`give_back`). What keeps the channel within its quota is one rule that every writer
leaves true when it commits: if any slot is over, no slot has room. Setting the quota
(`lay_out`) and a release write while holding every slot; an order takes only from a slot
with room, so from a pair none of whose slots is over, and leaves none over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Row, bindparam, case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from domain.slots import draw, quota_shares, relaid_quotas
from models import ChannelQuota
from services.core.database import rows_changed
from services.inventory.slots import take_one

_SLOT = ChannelQuota.__table__
_ROOM = _SLOT.c.quota - _SLOT.c.used


def _pair():  # type: ignore[no-untyped-def]
    return (_SLOT.c.channel_id == bindparam("channel"), _SLOT.c.sku_id == bindparam("sku"))


def _take_one(*, waiting: bool):  # type: ignore[no-untyped-def]
    return take_one(_pair(), _ROOM, _SLOT.c.used, _SLOT.c.id, waiting=waiting)


# Built once (their cache keys too).
_TAKE_ANY, _TAKE_WAITING = _take_one(waiting=False), _take_one(waiting=True)
# A slot lowered below what it had used has no room, not negative room.
_ROOM_TOTAL = select(func.coalesce(func.sum(case((_ROOM > 0, _ROOM), else_=0)), 0)).where(*_pair())
_LOCK_ALL = select(_SLOT.c.id, _ROOM).where(*_pair()).order_by(_SLOT.c.slot).with_for_update()
_TAKE_FROM = (
    update(_SLOT)
    .where(_SLOT.c.id == bindparam("at"), _ROOM >= bindparam("units"))
    .values(used=_SLOT.c.used + bindparam("units"))
)


async def take(session: AsyncSession, channel_id: int, sku_id: int, units: int) -> list[tuple[int, int]]:
    """Take `units` of the channel's quota on the SKU, all or nothing: (slot row id, units)
    taken from each slot, or [] when the slots together have less room."""
    connection = await session.connection()
    savepoint = connection.dialect.name == "postgresql"  # only PostgreSQL locks rows
    if savepoint:
        await connection.exec_driver_sql("SAVEPOINT quota_slot")
    params = {"channel": channel_id, "sku": sku_id, "units": units}
    for step in (_TAKE_ANY, _ROOM_TOTAL, _TAKE_WAITING, _LOCK_ALL, _LOCK_ALL):
        if step is _ROOM_TOTAL:
            if (await connection.execute(step, params)).scalar_one() < units:
                return []  # refused, rightly: the slots have too little room
            continue
        if savepoint and step is not _TAKE_ANY:
            await connection.exec_driver_sql("ROLLBACK TO SAVEPOINT quota_slot")
        if step is _LOCK_ALL:
            room = [(row[0], row[1]) for row in await connection.execute(step, params)]
            if plan := draw(room, units):
                for at, part in plan:
                    taken = await connection.execute(_TAKE_FROM, {"at": at, "units": part})
                    assert rows_changed(taken) == 1, "a locked quota slot changed under its lock"
                return plan
            continue
        slot_id = (await connection.execute(step, params)).scalar_one_or_none()
        if slot_id is not None:
            return [(slot_id, units)]
    return []


# Every slot of the pair, locked in slot order; the pair's slot rows as they are now.
_HOLD_PAIR = (
    select(_SLOT.c.id, _SLOT.c.slot, _SLOT.c.quota, _SLOT.c.used)
    .where(*_pair()).order_by(_SLOT.c.slot).with_for_update()
)
_PAIR_ROWS = select(_SLOT.c.id).where(*_pair())
_GIVE_BACK = (
    update(_SLOT)
    .where(_SLOT.c.id == bindparam("at"))
    .values(used=_SLOT.c.used - bindparam("units"), quota=bindparam("share"))
)


async def _hold(connection: AsyncConnection, pair: Mapping[str, int]) -> Sequence[Row[Any]]:
    """Every slot row of the pair, locked in slot order. A statement sees the rows that
    existed when it began: one that waited for the quota being set over more slots misses
    those added, so the rows are read again after the lock, and locked again while there
    are more. None can be added after that: setting the quota holds slot 0 first."""
    held = (await connection.execute(_HOLD_PAIR, pair)).all()
    while {row.id for row in held} != set((await connection.execute(_PAIR_ROWS, pair)).scalars()):
        held = (await connection.execute(_HOLD_PAIR, pair)).all()
    return held


async def give_back(session: AsyncSession, channel_id: int, sku_id: int, units: Mapping[int, int]) -> None:
    """Give `units` (by slot row id) back to the channel's quota on the SKU, holding all of
    its slots (locked in slot order) meanwhile; while a slot is then over its share, the
    pair is laid out again (domain/slots.relaid_quotas), writing only the slots that changed.

    No overshoot. Every writer of the pair leaves this true when it commits: if a slot is
    over its share, no slot has room. Racing the quota being set (`lay_out`, which also
    holds every slot, taken in slot order), one of the two runs wholly after the other: a
    release that waited gives back into the new layout and, a slot still over, lays it out
    again; the quota set after a release lays out from what the release left. Racing
    orders: an order holds the slot it took from until it commits, so the release waits
    for it and counts its units; an order waiting for a slot the release holds reads it
    again once the release commits. An order takes only from a slot with room, so when no
    slot is over, and its take leaves none over: the sum it may reach is the quota. A
    statement sees only the rows that existed when it began, so the lock is taken as
    `_hold` tells.

    No deadlock. This waits for slots only in slot order, holding no slot of the pair
    before, as setting the quota and an order's steps 2 and 3 do; an order that took from
    one slot waits for no other slot of the pair. The caller takes pairs in (SKU, channel)
    order, the order in which orders take quotas, and quotas before stock, as they do.
    """
    connection = await session.connection()
    pair = {"channel": channel_id, "sku": sku_id}
    held = await _hold(connection, pair)
    # A slot holding fewer than its uses say (it never should) is left as it is.
    back = [units.get(row.id, 0) if row.used >= units.get(row.id, 0) else 0 for row in held]
    used = [row.used - given for row, given in zip(held, back, strict=True)]
    shares = relaid_quotas([row.quota for row in held], used)
    changed = [
        {"at": row.id, "units": given, "share": share}
        for row, given, share in zip(held, back, shares, strict=True) if given or share != row.quota
    ]
    if changed:
        await connection.execute(_GIVE_BACK, changed)


async def lay_out(session: AsyncSession, channel_id: int, sku_id: int, quota: int, slots: int) -> tuple[int, int]:
    """Set the channel's quota on the SKU to `quota`, spread over `slots` slots, holding all
    of them (locked in slot order, `_hold`: every one, those another setting just added
    too) meanwhile; each keeps what it has used. Returns the sums (quota, used)."""
    connection = await session.connection()
    used = {row.slot: row.used for row in await _hold(connection, {"channel": channel_id, "sku": sku_id})}
    shares = quota_shares(quota, used, slots)
    for slot in sorted(set(used) | set(shares)):
        at = (_SLOT.c.channel_id == channel_id, _SLOT.c.sku_id == sku_id, _SLOT.c.slot == slot)
        if slot not in shares:
            await connection.execute(delete(_SLOT).where(*at))
        elif slot in used:
            await connection.execute(update(_SLOT).where(*at).values(quota=shares[slot]))
        else:
            await connection.execute(
                insert(_SLOT).values(channel_id=channel_id, sku_id=sku_id, slot=slot, quota=shares[slot], used=0)
            )
    return quota, sum(used.values())


def laid_out(channel_id: int, sku_id: int, quota: int, slots: int) -> list[dict[str, int]]:
    """The rows of a new quota: `quota` spread over `slots` unused slots."""
    return [
        {"channel_id": channel_id, "sku_id": sku_id, "slot": slot, "quota": share, "used": 0}
        for slot, share in quota_shares(quota, {}, slots).items()
    ]
