"""Payment notifications (for replay protection), prepaid balances of B2B channels, and
payments through providers (WeChat Pay, Alipay): accounts, payments, refused notifications."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, Text, UniqueConstraint
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


class PaymentAccount(Base):
    """How one channel (or every channel without its own: scope `*`) reaches one payment
    provider: a mini-program's WeChat app id differs from an H5 site's. The merchant's
    private key and API v3 key are sealed (services/payments/accounts.py); the provider's
    public key is public."""

    __tablename__ = "payment_account"
    __table_args__ = (UniqueConstraint("provider", "scope", name="uq_payment_account_provider_scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(32))  # a channel code, or "*"
    app_id: Mapped[str] = mapped_column(String(64))
    merchant_id: Mapped[str] = mapped_column(String(64))
    base_url: Mapped[str] = mapped_column(String(300))
    key_serial: Mapped[str] = mapped_column(String(64), default="")
    provider_key_id: Mapped[str] = mapped_column(String(64), default="")
    provider_public_key: Mapped[str] = mapped_column(Text)
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Payment(Base):
    """A payment started for an order through a provider: one per order and provider
    (the provider's out_trade_no is the order's number). `transaction_id` is the provider's
    id of the money once it moved; a notification applies it once."""

    __tablename__ = "payment"
    __table_args__ = (
        UniqueConstraint("order_id", "provider", name="uq_payment_order_provider"),
        UniqueConstraint("provider", "transaction_id", name="uq_payment_provider_transaction"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("payment_account.id"))
    provider: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # STARTED, PAID, OWED_BACK
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    handle: Mapped[str | None] = mapped_column(String(512))  # prepay_id, h5_url, code_url, trade_no
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None]


class PaymentRefusal(Base):
    """A provider's notification that was genuine (its signature held) but could not be
    applied: a wrong amount or currency, another app's or merchant's, an unknown order.
    Once per notification and reason, however often the provider retries it."""

    __tablename__ = "payment_refusal"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    provider: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32))
    order_number: Mapped[str] = mapped_column(String(64))
    transaction_id: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProviderReconciliation(Base):
    """One comparison of a provider's daily statement with our payments and refunds of that
    day (China time); rows are only added."""

    __tablename__ = "provider_reconciliation"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD
    actor: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    records: Mapped[int]
    matched: Mapped[int]
    missing_on_their_side: Mapped[int]
    missing_on_our_side: Mapped[int]
    amount_mismatches: Mapped[int]
    status_mismatches: Mapped[int]


class ProviderReconciliationItem(Base):
    """A difference: `reference` is our order number (a payment) or refund number (a refund)."""

    __tablename__ = "provider_reconciliation_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    reconciliation_id: Mapped[int] = mapped_column(ForeignKey("provider_reconciliation.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    reference: Mapped[str] = mapped_column(String(64))
    our_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    their_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    our_status: Mapped[str | None] = mapped_column(String(16))
    their_status: Mapped[str | None] = mapped_column(String(16))
