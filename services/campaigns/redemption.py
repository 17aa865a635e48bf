"""Redeeming a coupon inside the order's own transaction, and giving it back when the order
ends unsold.

Redemption is two conditional statements, each one atomic step under its row's lock:

1. a generated code is claimed: `UPDATE coupon_code SET order_id = :order WHERE id = :code
   AND order_id IS NULL` (a public code, shared by every buyer, skips this);
2. the campaign is counted: `UPDATE campaign SET redemptions = redemptions + 1, spent_fen =
   spent_fen + :discount WHERE id = :campaign AND active AND redemptions < max_redemptions
   AND spent_fen + :discount <= budget_fen AND <within the window> RETURNING id`.

A statement that changes no row refuses the order, which rolls back with everything it
took. On PostgreSQL a concurrent redeemer waits on the campaign's row and re-evaluates the
condition on the committed count, so 300 buyers of a 30-use coupon through any number of
gateway processes get exactly 30 discounts; on SQLite the write transaction is the single
writer. Rows are taken in one order by every transaction (buyer tallies, the code, the
campaign, then quotas and stock), so they queue instead of deadlocking.

Release runs in the transaction that won the order's move to CANCELLED, EXPIRED or
REJECTED, and marks the redemption released in the same conditional statement that finds
it: the uses, the budget and the code come back exactly once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.campaigns import COUPON_LIMIT
from models import Campaign, CouponCode, CouponRedemption, Order
from services.campaigns.coupons import Applied, CouponRefusal

USED = CouponRefusal("this coupon has already been used")
SPENT = CouponRefusal("this coupon has been used up", COUPON_LIMIT)


def _counted(discount: int, now: datetime) -> list[object]:
    return [
        Campaign.active.is_(True),
        or_(Campaign.max_redemptions.is_(None), Campaign.redemptions < Campaign.max_redemptions),
        or_(Campaign.budget_fen.is_(None), Campaign.spent_fen + discount <= Campaign.budget_fen),
        or_(Campaign.starts_at.is_(None), Campaign.starts_at <= now),
        or_(Campaign.ends_at.is_(None), Campaign.ends_at > now),
    ]


async def redeem(session: AsyncSession, applied: Applied, order_id: int, now: datetime) -> CouponRefusal | None:
    """Take the coupon for the order (ORM path); a refusal means the caller rolls back."""
    connection = await session.connection()
    if applied.single_use:
        claimed = await connection.execute(
            update(CouponCode).where(CouponCode.id == applied.code_id, CouponCode.order_id.is_(None))
            .values(order_id=order_id).returning(CouponCode.id)
        )
        if claimed.first() is None:
            return USED
    counted = await connection.execute(
        update(Campaign).where(Campaign.id == applied.campaign_id, *_counted(applied.total, now))
        .values(redemptions=Campaign.redemptions + 1, spent_fen=Campaign.spent_fen + applied.total)
        .returning(Campaign.id)
    )
    if counted.first() is None:
        return SPENT
    await connection.execute(
        CouponRedemption.__table__.insert().values(
            campaign_id=applied.campaign_id, order_id=order_id, code_id=applied.code_id,
            discount_fen=applied.total, created_at=now, released_at=None,
        )
    )
    return None


# The same on PostgreSQL's driver (services/orders/placement_pg.py): one round trip each.
CLAIM_CODE_PG = "UPDATE coupon_code SET order_id = $2 WHERE id = $1 AND order_id IS NULL RETURNING id"
COUNT_CAMPAIGN_PG = """
WITH counted AS (
  UPDATE campaign SET redemptions = redemptions + 1, spent_fen = spent_fen + $3
  WHERE id = $1 AND active
    AND (max_redemptions IS NULL OR redemptions < max_redemptions)
    AND (budget_fen IS NULL OR spent_fen + $3 <= budget_fen)
    AND (starts_at IS NULL OR starts_at <= $5) AND (ends_at IS NULL OR ends_at > $5)
  RETURNING id
)
INSERT INTO coupon_redemption (campaign_id, order_id, code_id, discount_fen, created_at, released_at)
SELECT counted.id, $2, $4, $3, $5, NULL FROM counted
RETURNING id
"""


async def release(session: AsyncSession, order: Order, now: datetime) -> None:
    """Give back what the order's redemption took; no statement for an order without one.

    The caller has just won the order's status change; the conditional mark on the
    redemption makes a second release (a retried command, a race) find nothing to give.
    """
    if order.campaign_id is None:
        return
    connection = await session.connection()
    given = (
        await connection.execute(
            update(CouponRedemption)
            .where(CouponRedemption.order_id == order.id, CouponRedemption.released_at.is_(None))
            .values(released_at=now)
            .returning(CouponRedemption.campaign_id, CouponRedemption.code_id, CouponRedemption.discount_fen)
        )
    ).first()
    if given is None:
        return
    campaign_id, code_id, discount = given
    await connection.execute(
        update(CouponCode).where(and_(CouponCode.id == code_id, CouponCode.order_id == order.id)).values(order_id=None)
    )
    await connection.execute(
        update(Campaign).where(Campaign.id == campaign_id)
        .values(redemptions=Campaign.redemptions - 1, spent_fen=Campaign.spent_fen - discount)
    )
