"""Buyers' tallies: what each buyer identity holds unpaid and has bought, counted atomically.

An order's tallies are raised in the order's own transaction by ONE statement, an upsert
over every (scope, buyer) the order counts in:

    INSERT INTO buyer_tally (scope, buyer, units, cap) VALUES (...), (...)
    ON CONFLICT (scope, buyer) DO UPDATE SET units = buyer_tally.units + excluded.units, ...
    WHERE buyer_tally.units + excluded.units <= excluded.cap
    RETURNING scope, buyer, id

A row the condition refuses is not returned, and the order is refused and rolled back,
taking every raise (and nothing else was reserved yet) with it. The check and the count are
one step under the row's lock: on PostgreSQL the upsert waits for a concurrent transaction
holding the row and then evaluates the condition on the committed count, so of ten
concurrent orders of one buyer under a limit of one exactly one passes, through any number
of gateway processes; on SQLite the write transaction is the single writer. Because the
raise commits or rolls back with the order, there is nothing to compensate after a crash,
as there would be with a counter kept in Redis beside the database.

Rows are taken in (scope, buyer) order, by placement and release alike, and before any
quota or stock row, so transactions that meet on them queue instead of deadlocking.

Which tallies an order raised is kept on the order (`buyer_tallies`), written with the
order's status in the placement's last flush, so ending an order gives back exactly what it
took, once: the release runs in the transaction whose conditional status change won.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.limits import Tally, merged
from models import BuyerTally, Order


async def take(session: AsyncSession, found: Sequence[Tally]) -> list[list[int]] | Tally:
    """Raise the order's tallies, all or nothing: what the order should record, or the tally
    that would pass its cap (the caller then rolls back)."""
    wanted = merged(found)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(BuyerTally).values(
        [{"scope": t.scope, "buyer": t.buyer, "units": t.units, "cap": t.cap} for t in wanted]
    )
    raised = statement.on_conflict_do_update(
        index_elements=[BuyerTally.scope, BuyerTally.buyer],
        set_={"units": BuyerTally.units + statement.excluded.units, "cap": statement.excluded.cap},
        where=BuyerTally.units + statement.excluded.units <= statement.excluded.cap,
    ).returning(BuyerTally.scope, BuyerTally.buyer, BuyerTally.id)
    ids = {(scope, buyer): tally_id for scope, buyer, tally_id in await session.execute(raised)}
    refused = next((tally for tally in wanted if tally.key not in ids), None)
    if refused is not None:
        return refused
    return [[ids[t.key], t.units, int(t.held)] for t in wanted]


async def release(session: AsyncSession, order: Order, *, holds_only: bool = False, scope: str | None = None) -> None:
    """Give back what the order raised: its holds when it is paid, everything when it ends
    unsold (cancelled, expired, rejected), the counts of one `scope` only when asked (a
    coupon's per-buyer uses, when a paid order is refunded whole). The caller has just won
    the order's status change, so this runs once per order and reason. No statement for an
    order that raised nothing."""
    given = {tally_id: units for tally_id, units, held in order.buyer_tallies or () if held or not holds_only}
    if not given:
        return
    amount = case(given, value=BuyerTally.id, else_=0)
    # Locked in (scope, buyer) order, as take() locks them (SQLite: the writer lock holds all).
    locked = (
        select(BuyerTally.id)
        .where(BuyerTally.id.in_(list(given)), *([BuyerTally.scope == scope] if scope is not None else []))
        .order_by(BuyerTally.scope, BuyerTally.buyer)
        .with_for_update()
    )
    await session.execute(
        update(BuyerTally)
        .where(BuyerTally.id.in_(locked))
        .values(units=case((BuyerTally.units > amount, BuyerTally.units - amount), else_=0))
        .execution_options(synchronize_session=False)
    )
