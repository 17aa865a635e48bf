"""Orders, their lines, their audit trail, and what stock each line holds."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domain.orders import OrderStatus
from models.base import Base, str_enum, utcnow


class Order(Base):
    __tablename__ = "order"
    __table_args__ = (
        # The same key on the same channel is the same order, however often it is sent.
        UniqueConstraint("channel_id", "idempotency_key", name="uq_order_channel_idempotency"),
        Index("ix_order_channel_created", "channel_id", "id"),
        Index("ix_order_status_expires", "status", "expires_at"),
        # Analytics and the dashboard read orders by when they were placed and paid.
        Index("ix_order_created", "created_at"),
        Index("ix_order_channel_created_at", "channel_id", "created_at"),
        Index("ix_order_paid", "paid_at"),
        # The risk check asks when a buyer account first ordered.
        Index("ix_order_recharge_account", "recharge_account", "created_at"),
        Index("ix_order_buyer_email", "buyer_email", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    status: Mapped[OrderStatus] = mapped_column(str_enum(OrderStatus))
    currency: Mapped[str] = mapped_column(String(3))
    total_fen: Mapped[int] = mapped_column(BigInteger)
    buyer_phone: Mapped[str | None] = mapped_column(String(32))
    buyer_email: Mapped[str | None] = mapped_column(String(254))
    recharge_account: Mapped[str | None] = mapped_column(String(128))
    device_id: Mapped[str | None] = mapped_column(String(128))
    # The buyer's pseudonym (domain.buyers.buyer_key), written when the contacts are erased for retention.
    buyer_ref: Mapped[str | None] = mapped_column(String(32))
    # The coupon as the order records it (a public code as its campaign spells it, a generated
    # one only by a tag: domain/campaigns.generated_tag), and its campaign.
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"))
    discount_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    client_ip: Mapped[str | None] = mapped_column(String(64))
    placed_by: Mapped[str] = mapped_column(String(120))
    payment_reference: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    # The buyer tallies the order counts in, [tally id, units, 1 if a hold else 0] each
    # (services/orders/tallies.py); null when no limit applied, as for most orders.
    buyer_tallies: Mapped[list[list[int]] | None] = mapped_column(JSON)


class OrderLine(Base):
    __tablename__ = "order_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    quantity: Mapped[int]
    unit_price_fen: Mapped[int] = mapped_column(BigInteger)
    # The coupon's share of the line (fen): the buyer pays quantity × unit price less this.
    discount_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Units accepted before codes existed; served first-in first-out on import.
    presale_quantity: Mapped[int] = mapped_column(default=0)
    # Set once, by the conditional update that decides the line: DELIVERED or REFUNDED.
    outcome: Mapped[str | None] = mapped_column(String(16))
    # The supplier that fulfilled the line (settlement charges its cost to it).
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("supplier.id"))


class OrderEvent(Base):
    """One transition of an order: the audit trail. Rows are only ever added."""

    __tablename__ = "order_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    actor: Mapped[str] = mapped_column(String(120))
    from_status: Mapped[OrderStatus | None] = mapped_column(str_enum(OrderStatus))
    to_status: Mapped[OrderStatus] = mapped_column(str_enum(OrderStatus))
    reason: Mapped[str] = mapped_column(String(500), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Allocation(Base):
    """Stock an order line holds: a code (or uses of a serial), counter units, or presale.

    Releasing an order gives back exactly what these rows record, once: a row
    leaves the HELD state in the same statement that returns its stock.
    """

    __tablename__ = "allocation"
    __table_args__ = (Index("ix_allocation_line", "line_id"), Index("ix_allocation_presale", "sku_id", "state", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    code_id: Mapped[int | None] = mapped_column(ForeignKey("card_code.id"))
    units: Mapped[int]
    # HELD (reserved), PRESALE (waiting for codes), SOLD, RELEASED
    state: Mapped[str] = mapped_column(String(16), default="HELD")
    source: Mapped[str] = mapped_column(String(16))  # CODE, COUNTER, PRESALE
    # The counter slot (stock_level.slot) COUNTER units came from: released and sold there.
    slot: Mapped[int | None]
