"""Sale events (预约抢购): a SKU's scheduled sale on a channel, and the buyers registered for it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class SaleEvent(Base):
    """A SKU's sale on a channel from `starts_at` (to `ends_at`); with a registration window,
    only registered buyers may buy. Rows are kept; a cancelled sale has `cancelled_at`."""

    __tablename__ = "sale_event"
    __table_args__ = (Index("ix_sale_event_channel_sku", "channel_id", "sku_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    registration_opens_at: Mapped[datetime | None]
    registration_closes_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SaleRegistration(Base):
    """One buyer registered for a sale, by the identities they gave in canonical form.

    Each identity registers once per sale (the unique indexes; NULLs never collide): a buyer
    registering again, in any spelling, or with one identity already registered, adds nothing.
    """

    __tablename__ = "sale_registration"
    __table_args__ = (
        UniqueConstraint("sale_id", "phone", name="uq_sale_registration_phone"),
        UniqueConstraint("sale_id", "email", name="uq_sale_registration_email"),
        UniqueConstraint("sale_id", "device", name="uq_sale_registration_device"),
        UniqueConstraint("sale_id", "account", name="uq_sale_registration_account"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sale_id: Mapped[int] = mapped_column(ForeignKey("sale_event.id"))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(300))
    device: Mapped[str | None] = mapped_column(String(128))
    account: Mapped[str | None] = mapped_column(String(128))
    address: Mapped[str | None] = mapped_column(String(64))  # the client's, for callers from the public
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
