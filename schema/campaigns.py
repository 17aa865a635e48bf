"""Types of campaigns (营销活动) and their coupons."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from domain.campaigns import Bearer
from models import Campaign as CampaignRow
from schema.money import Money
from schema.relay import encode_id
from services.campaigns.figures import CampaignFigures

CampaignBearer = strawberry.enum(
    Bearer, name="CampaignBearer",
    description="Who pays for a campaign's discounts; booked as that party's marketing cost.",
)


@strawberry.type(description="What a campaign brought in and what it cost (campaign ROI).")
class CampaignPerformance:
    orders: int = strawberry.field(description="Orders holding one of its redemptions now, paid or not.")
    discount_given: Money = strawberry.field(description="What those orders took off.")
    paid_orders: int
    revenue: Money = strawberry.field(description="What its paid orders brought in, net of their discount.")
    revenue_per_discount: Decimal | None = strawberry.field(description=(
        "Revenue of paid orders per unit of their discount (two decimals); null before any paid order."
    ))

    @classmethod
    def of(cls, figures: CampaignFigures, currency: str) -> CampaignPerformance:
        ratio = None
        if figures.paid_discount_fen > 0:
            ratio = (Decimal(figures.revenue_fen) / Decimal(figures.paid_discount_fen)).quantize(Decimal("0.01"))
        return cls(
            orders=figures.orders, discount_given=Money.fen(figures.discount_fen, currency),
            paid_orders=figures.paid_orders, revenue=Money.fen(figures.revenue_fen, currency),
            revenue_per_discount=ratio,
        )


@strawberry.type(description="A discount on some SKUs of one channel, for a while, within a budget.")
class Campaign:
    id: strawberry.ID
    name: str
    channel: str
    code: str | None = strawberry.field(description="The public code; null when its codes are generated.")
    amount_off: Money | None
    percent_off: int | None
    max_discount: Money | None
    price: Money | None
    redemptions: int = strawberry.field(description="Orders holding a redemption now (given back when one ends unsold).")
    max_redemptions: int | None
    spent: Money = strawberry.field(description="Discount held by those orders, against `budget`.")
    budget: Money | None
    per_buyer_limit: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    subsidised: bool = strawberry.field(description="May sell below a SKU's price floor.")
    active: bool = strawberry.field(description="False once an operator ended it (endCampaign).")
    bearer: CampaignBearer  # type: ignore[valid-type]
    sku_ids: list[strawberry.ID]
    performance: CampaignPerformance

    @classmethod
    def from_model(
        cls, row: CampaignRow, channel: str, currency: str, sku_ids: list[int], figures: CampaignFigures,
    ) -> Campaign:
        def money(fen: int | None) -> Money | None:
            return Money.fen(fen, currency) if fen is not None else None

        return cls(
            id=encode_id("Campaign", row.id), name=row.name, channel=channel, code=row.code,
            amount_off=money(row.amount_off_fen), percent_off=row.percent_off,
            max_discount=money(row.max_discount_fen), price=money(row.price_fen),
            redemptions=row.redemptions, max_redemptions=row.max_redemptions,
            spent=Money.fen(row.spent_fen, currency), budget=money(row.budget_fen),
            per_buyer_limit=row.per_buyer_limit, starts_at=row.starts_at, ends_at=row.ends_at,
            subsidised=row.subsidised, active=row.active, bearer=row.bearer,
            sku_ids=[encode_id("Sku", sku_id) for sku_id in sku_ids],
            performance=CampaignPerformance.of(figures, currency),
        )
