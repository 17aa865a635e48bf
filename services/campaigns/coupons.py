"""A coupon as an order meets it: found by its code among the reads before the order's write
transaction, checked against the order, and priced into a discount per line.

Everything here only reads. What is checked here is checked again where it counts: the
redemption's conditional UPDATEs (redemption.py) decide uses, budget and window inside the
order's transaction, so a campaign used up between these reads and the write still refuses.

A code that matches nothing, or matches a campaign of another channel, gets the same answer:
a buyer probing codes learns nothing about other channels' campaigns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.campaigns import (
    COUPON_LIMIT,
    COUPON_UNAVAILABLE,
    Discount,
    PricedLine,
    Window,
    below_floor,
    code_digest,
    code_key,
    line_discounts,
    generated_tag,
)
from domain.limits import COUPON_SCOPE
from domain.money import Money
from models import Campaign, CampaignSku, CouponCode

UNKNOWN = "this coupon is not available"


@dataclass(frozen=True, slots=True)
class Applied:
    """A coupon the order may redeem: what it takes off each line, and what the write checks."""

    campaign_id: int
    code_id: int
    single_use: bool
    tag: str  # how the order records the code: the public code, or a generated one's tag
    discounts: list[int]  # fen off each line, in the order's line order
    per_buyer_limit: int | None

    @property
    def total(self) -> int:
        return sum(self.discounts)


@dataclass(frozen=True, slots=True)
class CouponRefusal:
    message: str
    code: str = COUPON_UNAVAILABLE
    miss: bool = False  # no such code on the channel: counts as a guess (guesses.py)


NOT_FOUND = CouponRefusal(UNKNOWN, miss=True)


def discount_of(campaign: Campaign, currency: str) -> Discount:
    def money(fen: int | None) -> Money | None:
        return Money(fen, currency) if fen is not None else None

    return Discount(
        amount_off=money(campaign.amount_off_fen), percent_off=campaign.percent_off,
        max_discount=money(campaign.max_discount_fen), price=money(campaign.price_fen),
    )


async def apply_coupon(
    session: AsyncSession, channel_id: int, text: str, lines: list[PricedLine], now: datetime
) -> Applied | CouponRefusal:
    """The coupon `text` names on this channel applied to `lines`, or why it cannot be."""
    key = code_key(text)
    if key is None:
        return NOT_FOUND
    found = (
        await session.execute(
            select(CouponCode.id, CouponCode.single_use, CouponCode.order_id, Campaign)
            .join(Campaign, Campaign.id == CouponCode.campaign_id)
            .where(CouponCode.digest == code_digest(key), Campaign.channel_id == channel_id)
        )
    ).first()
    if found is None:
        return NOT_FOUND
    code_id, single_use, held_by, campaign = found
    if not campaign.active:
        return CouponRefusal("this coupon has ended")
    if single_use and held_by is not None:
        return CouponRefusal("this coupon has already been used")
    if (late := Window(campaign.starts_at, campaign.ends_at).refusal(now)) is not None:
        return CouponRefusal(late)
    if campaign.max_redemptions is not None and campaign.redemptions >= campaign.max_redemptions:
        return CouponRefusal("this coupon has been used up", COUPON_LIMIT)
    eligible = set(
        await session.scalars(
            select(CampaignSku.sku_id).where(
                CampaignSku.campaign_id == campaign.id, CampaignSku.sku_id.in_([line.sku_id for line in lines])
            )
        )
    )
    if not eligible:
        return CouponRefusal("this coupon does not apply to these items")
    currency = lines[0].unit.currency
    discounts = line_discounts(discount_of(campaign, currency), lines, eligible)
    if not campaign.subsidised and below_floor(lines, discounts) is not None:
        return CouponRefusal("this coupon cannot take these items below their lowest allowed price")
    total = sum(discounts)
    if campaign.budget_fen is not None and campaign.spent_fen + total > campaign.budget_fen:
        return CouponRefusal("this coupon's budget is used up", COUPON_LIMIT)
    return Applied(
        campaign.id, code_id, single_use, generated_tag(key) if single_use else campaign.code or key, discounts,
        campaign.per_buyer_limit,
    )


def campaign_scope(campaign_id: int) -> str:
    """The buyer-tally scope of a campaign's per-buyer limit (services/orders/tallies.py)."""
    return f"{COUPON_SCOPE}{campaign_id}"
