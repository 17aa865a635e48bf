"""Marketplace connections: how a channel reaches its marketplace's open platform, and the
record of every marketplace order (trade) it took, delivered and heard a refund of."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class MarketplaceConnection(Base):
    """One channel's marketplace. The app secret is sealed (services/core/secret_box.py),
    bound to the channel. `outer_ids` maps the marketplace's outer ids to our SKU codes
    where they differ (by default the outer id is our SKU code). The cursors are where the
    next pull of trades and of refunds starts: moved only after what was pulled is stored."""

    __tablename__ = "marketplace_connection"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"), unique=True)
    adapter: Mapped[str] = mapped_column(String(32))
    base_url: Mapped[str] = mapped_column(String(500))
    app_key: Mapped[str] = mapped_column(String(100))
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    outer_ids: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    poll_seconds: Mapped[int] = mapped_column(default=60)
    timeout_seconds: Mapped[float] = mapped_column(default=10.0)
    enabled: Mapped[bool] = mapped_column(default=True)
    trades_cursor: Mapped[datetime | None]
    refunds_cursor: Mapped[datetime | None]
    last_pull_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MarketplaceOrder(Base):
    """One trade of a marketplace, however often it was pulled or pushed (`seen`).

    status: RECEIVED (being imported), IMPORTED (our order exists, paid), FAILED (not
    importable: `reason`, for operators; never retried by itself), CANCELLED (refunded on
    the marketplace before it was delivered). report_status: PENDING (the delivery is being
    reported), REPORTED, FAILED (every attempt failed: operators may retry). refund_status:
    REFUNDED (honoured: our order refunded before delivery) or REQUESTED (delivered or being
    delivered: a Refund on the order, for operators to decide), then AGREED or REFUSED, the
    decision reported back to the marketplace (refund_report_status)."""

    __tablename__ = "marketplace_order"
    __table_args__ = (
        UniqueConstraint("channel_id", "tid", name="uq_marketplace_order_channel_tid"),
        Index("ix_marketplace_order_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    tid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(300))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    source: Mapped[str] = mapped_column(String(8))  # PULL or PUSH: how it first came
    seen: Mapped[int] = mapped_column(default=1)
    lines: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)  # outer ids and quantities
    paid_fen: Mapped[int] = mapped_column(default=0)
    report_status: Mapped[str | None] = mapped_column(String(16))
    report_attempts: Mapped[int] = mapped_column(default=0)
    report_error: Mapped[str | None] = mapped_column(String(300))
    reported_at: Mapped[datetime | None]
    refund_id: Mapped[str | None] = mapped_column(String(64))
    refund_status: Mapped[str | None] = mapped_column(String(16))
    # The operators' decision on the refund (AGREED or REFUSED), reported back: PENDING, REPORTED, FAILED.
    refund_report_status: Mapped[str | None] = mapped_column(String(16))
    refund_report_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    refund_report_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
