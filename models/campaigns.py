"""Campaigns (营销活动), their coupon codes, and each order's redemption."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from domain.campaigns import Bearer
from models.base import Base, str_enum, utcnow


class Campaign(Base):
    """A discount on some SKUs of one channel, for a while, within a budget.

    `redemptions` and `spent_fen` are raised by the order that redeems, in its own
    transaction, by one conditional UPDATE that refuses to pass `max_redemptions` or
    `budget_fen`; an order that ends unsold lowers them again, once.
    """

    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"), index=True)
    code: Mapped[str | None] = mapped_column(String(32))  # the public code as the operator wrote it
    amount_off_fen: Mapped[int | None] = mapped_column(BigInteger)
    percent_off: Mapped[int | None]
    max_discount_fen: Mapped[int | None] = mapped_column(BigInteger)
    price_fen: Mapped[int | None] = mapped_column(BigInteger)
    max_redemptions: Mapped[int | None]
    redemptions: Mapped[int] = mapped_column(default=0)
    budget_fen: Mapped[int | None] = mapped_column(BigInteger)
    spent_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    per_buyer_limit: Mapped[int | None]
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    subsidised: Mapped[bool] = mapped_column(default=False)
    bearer: Mapped[Bearer] = mapped_column(str_enum(Bearer))
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignSku(Base):
    __tablename__ = "campaign_sku"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"), primary_key=True)


class CouponCode(Base):
    """One code of a campaign, kept only as its digest (domain/campaigns.py).

    A public code is one row any number of orders redeem; a generated code is used once:
    `order_id` is the order holding it, set by a conditional UPDATE, cleared when that
    order ends unsold.
    """

    __tablename__ = "coupon_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    single_use: Mapped[bool] = mapped_column(default=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CouponRedemption(Base):
    """An order's use of a campaign: what it took off, and when it gave that back."""

    __tablename__ = "coupon_redemption"
    __table_args__ = (Index("ix_coupon_redemption_campaign", "campaign_id", "released_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), unique=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("coupon_code.id"))
    discount_fen: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None]
