"""Channel prices (standing and promotion windows), B2B tiers, the price audit, quotas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class ChannelPrice(Base):
    """A channel's price for a SKU: standing when it has no window, else a promotion."""

    __tablename__ = "channel_price"
    __table_args__ = (Index("ix_channel_price_channel_sku", "channel_id", "sku_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    price_fen: Mapped[int] = mapped_column(BigInteger)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PriceTier(Base):
    """A B2B quantity tier: from `min_quantity` units on, each costs `price_fen`."""

    __tablename__ = "price_tier"

    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"), primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"), primary_key=True)
    min_quantity: Mapped[int] = mapped_column(primary_key=True)
    price_fen: Mapped[int] = mapped_column(BigInteger)


class PriceChange(Base):
    """Every change of a channel price: who, when, from what, to what. Never updated."""

    __tablename__ = "price_change"
    __table_args__ = (Index("ix_price_change_channel_sku", "channel_id", "sku_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    actor: Mapped[str] = mapped_column(String(120))
    old_price_fen: Mapped[int | None] = mapped_column(BigInteger)
    new_price_fen: Mapped[int | None] = mapped_column(BigInteger)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelQuota(Base):
    """A channel's cap on a SKU over the shared pool; `used` moves with its reservations."""

    __tablename__ = "channel_quota"
    __table_args__ = (UniqueConstraint("channel_id", "sku_id", name="uq_channel_quota_channel_sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    quota: Mapped[int]
    used: Mapped[int] = mapped_column(default=0)
