"""The database floor of a flash sale: the same reservation and inserts as raw asyncpg.

Per order one transaction on a pooled connection: the order row, its line, the claim of
one code (`FOR UPDATE SKIP LOCKED`, as the gateway's reservation does), the allocation
that records which line holds it, and one order event. No GraphQL, no ORM, no pricing or
idempotency look-ups: what PostgreSQL and the driver cost for the writes a sale must make.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from flash_load import OUT_OF_STOCK, PLACED, Place, Tally, drive, rush

from services.orders.slots_pg import take_counter

INSERT_ORDER = """
INSERT INTO "order" (number, channel_id, idempotency_key, status, currency, total_fen,
                     buyer_phone, device_id, placed_by, created_at, updated_at, expires_at)
VALUES ($1, $2, $3, 'PENDING_PAYMENT', 'CNY', $4, $5, $6, 'guest', $7, $7, $8)
RETURNING id
"""
INSERT_LINE = """
INSERT INTO order_line (order_id, sku_id, quantity, unit_price_fen, presale_quantity)
VALUES ($1, $2, 1, $3, 0)
RETURNING id
"""
# The scalar subquery runs once: it locks one AVAILABLE code, skipping those that other
# buyers hold locked, and the UPDATE claims exactly that row.
CLAIM = """
UPDATE card_code SET status = 'RESERVED', order_line_id = $1
WHERE id = (SELECT id FROM card_code WHERE sku_id = $2 AND status = 'AVAILABLE'
            ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id
"""
INSERT_ALLOCATION = """
INSERT INTO allocation (line_id, sku_id, code_id, units, state, source)
VALUES ($1, $2, $3, 1, 'HELD', 'CODE')
"""
INSERT_EVENT = """
INSERT INTO order_event (order_id, actor, from_status, to_status, reason, at)
VALUES ($1, 'guest', NULL, 'PENDING_PAYMENT', 'placed', $2)
"""

TTL = timedelta(seconds=900)


class _SoldOut(Exception):
    """Rolls the order's transaction back: no code was left to claim."""


@dataclass(frozen=True, slots=True)
class FloorSale:
    sku_id: int
    orders: int
    prefix: str  # order numbers and idempotency keys of this sale


@dataclass(frozen=True, slots=True)
class FloorPlan:
    dsn: str
    channel_id: int
    price_fen: int
    concurrency: int
    cap_seconds: float
    warmup: FloorSale
    sale: FloorSale
    counter: bool = False  # the SKUs keep counter stock, not codes


def _place_with(pool: asyncpg.Pool, plan: FloorPlan, sale: FloorSale) -> Place:
    async def place(n: int) -> str:
        now = datetime.now(UTC)
        try:
            async with pool.acquire() as connection, connection.transaction():
                order_id = await connection.fetchval(
                    INSERT_ORDER,
                    f"FL{sale.prefix}{n:010d}",
                    plan.channel_id,
                    f"floor-{sale.prefix}-{n}",
                    plan.price_fen,
                    f"139{n:08d}",
                    f"bench-{n}",
                    now,
                    now + TTL,
                )
                line_id = await connection.fetchval(
                    INSERT_LINE, order_id, sale.sku_id, plan.price_fen
                )
                if plan.counter:
                    # The counter last, as the gateway takes it: its row is locked until COMMIT.
                    await connection.execute(INSERT_EVENT, order_id, now)
                    # A unit of one of its slots with the allocation, by the gateway's own
                    # statements (services/orders/slots_pg.py).
                    if not await take_counter(connection, line_id, sale.sku_id, 1):
                        raise _SoldOut
                else:
                    code_id = await connection.fetchval(CLAIM, line_id, sale.sku_id)
                    if code_id is None:
                        raise _SoldOut
                    await connection.execute(INSERT_ALLOCATION, line_id, sale.sku_id, code_id)
                    await connection.execute(INSERT_EVENT, order_id, now)
        except _SoldOut:
            return OUT_OF_STOCK
        return PLACED

    return place


async def _floor_sale(plan: FloorPlan) -> tuple[Tally, Tally]:
    pool = await asyncpg.create_pool(plan.dsn, min_size=plan.concurrency, max_size=plan.concurrency)
    try:
        tallies = []
        for sale in (plan.warmup, plan.sale):
            places = [_place_with(pool, plan, sale) for _ in range(plan.concurrency)]
            tallies.append(await rush(places, sale.orders, plan.cap_seconds, None))
        return tallies[0], tallies[1]
    finally:
        await pool.close()


def run_floor(plan: FloorPlan) -> tuple[Tally, Tally]:
    """The warm-up's tally and the sale's; the entry of the client process."""
    return drive(_floor_sale(plan))
