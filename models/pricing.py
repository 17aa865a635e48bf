"""Channel prices (standing and promotion windows), B2B tiers, the price audit, quotas and their uses."""

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
    """One slot of a channel's cap on a SKU over the shared pool; `used` moves with its
    reservations. The channel's quota is the sum over the pair's slots, and so is what is
    used (services/inventory/quota_slots.py)."""

    __tablename__ = "channel_quota"
    __table_args__ = (UniqueConstraint("channel_id", "sku_id", "slot", name="uq_channel_quota_channel_sku_slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    slot: Mapped[int] = mapped_column(default=0, server_default="0")
    quota: Mapped[int]
    used: Mapped[int] = mapped_column(default=0)


class QuotaUse(Base):
    """Units one order line took from one channel quota; given back once, or never if sold.

    A bundle line takes from the quota of the bundle and of each component. Releasing a line
    gives back exactly what these rows record: an order placed before a quota existed took
    nothing and gives nothing back.

    `quota_id` has no foreign key on purpose: removing a quota deletes its uses, and a use
    that an order recorded while the quota was being removed names an id PostgreSQL never
    hands out again (SQLite runs one writer at a time, so no use is recorded meanwhile).
    """

    __tablename__ = "quota_use"
    __table_args__ = (Index("ix_quota_use_line", "line_id"), Index("ix_quota_use_quota", "quota_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"))
    quota_id: Mapped[int]
    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    units: Mapped[int]
    released_at: Mapped[datetime | None]
