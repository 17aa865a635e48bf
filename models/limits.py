"""Purchase limits (限购) per channel and SKU, hold limits per channel, and buyers' tallies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domain.limits import Period
from models.base import Base, str_enum, utcnow


class PurchaseLimit(Base):
    """What one buyer may buy of a SKU on a channel: per order, and per period."""

    __tablename__ = "purchase_limit"
    __table_args__ = (UniqueConstraint("channel_id", "sku_id", name="uq_purchase_limit_channel_sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    per_order: Mapped[int | None]
    per_buyer: Mapped[int | None]
    period: Mapped[Period] = mapped_column(str_enum(Period))
    starts_at: Mapped[datetime | None]  # SALE: purchases count from here
    updated_by: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class HoldLimit(Base):
    """A channel's own caps on units held unpaid; a null cap: the gateway's default, 0: none."""

    __tablename__ = "hold_limit"

    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"), primary_key=True)
    per_buyer: Mapped[int | None]
    per_address: Mapped[int | None]
    updated_by: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BuyerTally(Base):
    """Units one buyer identity has in one scope: held unpaid ("hold"), or bought of a SKU on a
    channel in one period ("sku:<channel>:<sku>:<period start>"). Raised only by a statement
    that refuses to pass `cap` (the cap the last raise was checked against)."""

    __tablename__ = "buyer_tally"
    __table_args__ = (UniqueConstraint("scope", "buyer", name="uq_buyer_tally_scope_buyer"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(80))
    buyer: Mapped[str] = mapped_column(String(300))
    units: Mapped[int]
    cap: Mapped[int]
