"""Payment notifications (for replay protection) and prepaid balances of B2B channels."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class PaymentNotification(Base):
    """A verified payment webhook delivery; its id may be seen once only."""

    __tablename__ = "payment_notification"

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[str] = mapped_column(String(128), unique=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class PrepaidAccount(Base):
    """A B2B channel's prepaid balance, in fen. Moved only by conditional updates."""

    __tablename__ = "prepaid_account"

    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"), primary_key=True)
    balance_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class BalanceMovement(Base):
    """Every change of a prepaid balance: top-up (+) or order payment (-)."""

    __tablename__ = "balance_movement"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), unique=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(default=utcnow)
