"""What each campaign did: redemptions held now, discount given, and the revenue of its paid
orders, computed in SQL (one statement per figure, whatever the number of campaigns)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.orders import OrderStatus
from models import CouponRedemption, Order

# Paid and not given back: what counts as revenue a campaign brought in.
SOLD = (OrderStatus.PAID, OrderStatus.FULFILLING, OrderStatus.DELIVERED, OrderStatus.PARTIALLY_DELIVERED)


@dataclass(frozen=True, slots=True)
class CampaignFigures:
    orders: int = 0  # orders holding a redemption now (unpaid ones included)
    discount_fen: int = 0  # what those orders took off
    paid_orders: int = 0
    revenue_fen: int = 0  # what the paid ones brought in, net of their discount
    paid_discount_fen: int = 0  # the discount on those


async def campaign_figures(session: AsyncSession, campaign_ids: Sequence[int]) -> dict[int, CampaignFigures]:
    if not campaign_ids:
        return {}
    held = {
        campaign_id: (orders, discount)
        for campaign_id, orders, discount in await session.execute(
            select(CouponRedemption.campaign_id, func.count(), func.coalesce(func.sum(CouponRedemption.discount_fen), 0))
            .where(CouponRedemption.campaign_id.in_(campaign_ids), CouponRedemption.released_at.is_(None))
            .group_by(CouponRedemption.campaign_id)
        )
    }
    sold = {
        campaign_id: (orders, revenue, discount)
        for campaign_id, orders, revenue, discount in await session.execute(
            select(Order.campaign_id, func.count(), func.coalesce(func.sum(Order.total_fen), 0),
                   func.coalesce(func.sum(Order.discount_fen), 0))
            .where(Order.campaign_id.in_(campaign_ids), Order.status.in_(SOLD))
            .group_by(Order.campaign_id)
        )
    }
    figures = {}
    for campaign_id in campaign_ids:
        orders, discount = held.get(campaign_id, (0, 0))
        paid, revenue, paid_discount = sold.get(campaign_id, (0, 0, 0))
        figures[campaign_id] = CampaignFigures(int(orders), int(discount), int(paid), int(revenue), int(paid_discount))
    return figures
