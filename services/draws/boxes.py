"""Drawing a blind box's units in the order's write transaction.

Each unit of a box line is drawn from the box's pool items that have stock at that moment,
with the weights the box publishes (domain/draws.py), and the drawn item's unit is reserved
for the line at once, through the same statements as any other line
(services/inventory/reservation.py). A drawn item whose last unit another buyer took in the
same instant (a code locked by a concurrent order is skipped, not waited for) leaves the
eligible set and the unit is drawn again, the attempt recorded: a box never sells what is
out of stock, and every attempt can be checked once the seed is revealed.

The round row is read FOR SHARE: draws of one box run side by side, while closing the round
or changing the pool (FOR UPDATE) waits for them, and they for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import CodeStatus, SkuKind
from domain.draws import Attempt, Weighted, eligible_of, pick, unit_label
from models import BlindBoxItem, BoxDraw, CardCode, DrawRound, Sku, StockLevel
from models.draws import OPEN
from services.core.secret_box import SecretBox
from services.draws.seeds import seed_of
from services.inventory.reservation import OutOfStock, take_now

DRAWABLE = (SkuKind.CARD_CODE, SkuKind.SERIAL, SkuKind.DIRECT_RECHARGE)


@dataclass(frozen=True, slots=True)
class BoxWant:
    """A box line of an order: `quantity` units to draw."""

    line_id: int
    box: Sku
    quantity: int


async def pool_of(session: AsyncSession, box_sku_ids: list[int]) -> dict[int, list[tuple[Sku, int]]]:
    """Each box's items (the SKU, its weight) in the published order."""
    found: dict[int, list[tuple[Sku, int]]] = {box: [] for box in box_sku_ids}
    if not box_sku_ids:
        return found
    for box_id, sku, weight in await session.execute(
        select(BlindBoxItem.box_sku_id, Sku, BlindBoxItem.weight)
        .join(Sku, Sku.id == BlindBoxItem.item_sku_id)
        .where(BlindBoxItem.box_sku_id.in_(box_sku_ids))
        .order_by(BlindBoxItem.box_sku_id, BlindBoxItem.position)
    ):
        found[box_id].append((sku, weight))
    return found


async def in_stock(session: AsyncSession, items: list[Sku], now: datetime) -> set[int]:
    """The items with at least one unit to sell now (archived or inactive ones have none)."""
    live = [sku for sku in items if sku.active and sku.archived_at is None and sku.kind in DRAWABLE]
    codes = [sku.id for sku in live if sku.kind is not SkuKind.DIRECT_RECHARGE]
    counters = [sku.id for sku in live if sku.kind is SkuKind.DIRECT_RECHARGE]
    found: set[int] = set()
    if codes:
        found.update(await session.scalars(
            select(CardCode.sku_id).where(
                CardCode.sku_id.in_(codes), CardCode.status == CodeStatus.AVAILABLE, CardCode.uses_left > 0,
                or_(CardCode.expires_at.is_(None), CardCode.expires_at > now),
            ).distinct()
        ))
    if counters:
        found.update(await session.scalars(
            select(StockLevel.sku_id).where(StockLevel.sku_id.in_(counters), StockLevel.on_hand - StockLevel.reserved > 0)
        ))
    return found


async def draw(
    session: AsyncSession, seeds: SecretBox, want: BoxWant, order_id: int, order_number: str, now: datetime,
    *, may_wait: bool = True,
) -> tuple[set[int], bool]:
    """Draw and reserve every unit of a box line; returns the pool's SKU ids (all of them,
    so that stock events say nothing of which was drawn) and whether the transaction now holds
    a top-up counter's row. Raises OutOfStock when the pool runs dry before the last unit.

    `may_wait`: the transaction holds no counter row yet, so it may queue for one. One that
    holds a counter never waits for another (two orders each holding the other's would
    deadlock): a counter another order has locked counts as gone, and the unit is drawn again."""
    round_ = await session.scalar(
        select(DrawRound).where(DrawRound.box_sku_id == want.box.id, DrawRound.status == OPEN)
        .with_for_update(read=True)
    )
    items = (await pool_of(session, [want.box.id]))[want.box.id]
    if round_ is None or not items:
        raise OutOfStock(want.box.id, want.line_id)
    seed = seed_of(seeds, round_)
    by_code = {sku.code: sku for sku, _ in items}
    pool = [Weighted(sku.code, weight) for sku, weight in items]
    with_stock = await in_stock(session, [sku for sku, _ in items], now)
    stocked = {sku.code for sku, _ in items if sku.id in with_stock}
    holds_counter = False
    for unit in range(want.quantity):
        label = unit_label(order_number, unit)
        eligible = eligible_of(pool, stocked)
        attempts: list[Attempt] = []
        while True:
            if not eligible:
                raise OutOfStock(want.box.id, want.line_id)
            picked = pick(seed, label, len(attempts), eligible)
            attempts.append(Attempt(eligible, picked))
            item = by_code[picked]
            if await _take(session, want.line_id, item, now, wait=may_wait and not holds_counter) == 1:
                holds_counter = holds_counter or item.kind is SkuKind.DIRECT_RECHARGE
                break
            stocked.discard(picked)  # gone under us: drawn again over what remains
            eligible = tuple(w for w in eligible if w.item != picked)
        if item.id not in await in_stock(session, [item], now):
            stocked.discard(picked)  # that was its last unit
        session.add(BoxDraw(
            round_id=round_.id, box_sku_id=want.box.id, order_id=order_id, line_id=want.line_id,
            order_number=order_number, unit=unit, item_sku_id=item.id, created_at=now,
            attempts=[{"eligible": [[w.item, w.weight] for w in a.eligible], "picked": a.picked} for a in attempts],
        ))
    return {sku.id for sku, _ in items}, holds_counter


async def _take(session: AsyncSession, line_id: int, item: Sku, now: datetime, *, wait: bool) -> int:
    """One unit of the item for the line (codes are taken SKIP LOCKED anyway)."""
    if item.kind is SkuKind.DIRECT_RECHARGE and not wait:
        free = await session.scalar(
            # One slot of its counter (services/inventory/slots.py) with a unit, if one is not locked.
            select(StockLevel.sku_id).where(StockLevel.sku_id == item.id, StockLevel.on_hand - StockLevel.reserved >= 1)
            .limit(1).with_for_update(skip_locked=True)
        )
        if free is None:
            return 0
    return await take_now(session, line_id, item, 1, now)
