"""Membership subscriptions (会员订阅): the SKUs sold by subscription, each subscription, and
its history (the orders that paid its periods, declined charges, reminders, the end)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domain.memberships import MembershipStatus, Period
from models.base import Base, str_enum


class MembershipPlan(Base):
    """A direct top-up SKU that may be bought as a subscription, renewing every `period`."""

    __tablename__ = "membership_plan"

    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"), primary_key=True)
    period: Mapped[Period] = mapped_column(str_enum(Period))
    enabled: Mapped[bool] = mapped_column(default=True)
    # The most one renewal may charge (the buyer agrees to it when signing): the channel's
    # price may change between renewals, within this.
    cap_fen: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(64))


class Membership(Base):
    """One buyer's subscription to one plan on one channel.

    `paid_periods` counts the periods paid; period n ends `n` periods after `started_at`.
    A renewal changes this row only while it holds its lock, and a cancel is a conditional
    UPDATE of it, so whichever commits first decides (services/memberships/renewal.py).
    """

    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("channel_id", "idempotency_key"),
        Index("ix_membership_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    period: Mapped[Period] = mapped_column(str_enum(Period))
    status: Mapped[MembershipStatus] = mapped_column(str_enum(MembershipStatus))
    provider: Mapped[str] = mapped_column(String(16))
    agreement_id: Mapped[str] = mapped_column(String(512))
    buyer_phone: Mapped[str | None] = mapped_column(String(32))
    buyer_email: Mapped[str | None] = mapped_column(String(254))
    recharge_account: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    paid_periods: Mapped[int] = mapped_column(default=0)
    declined: Mapped[int] = mapped_column(default=0)  # declined charges of the period now due
    last_order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"))
    placed_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(64))


class MembershipEvent(Base):
    """What happened to a membership, in order: SIGNED, CHARGED (with the order that paid
    the period), DECLINED (with the order that was not paid, and why), REMINDED, CANCELLED,
    LAPSED."""

    __tablename__ = "membership_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("membership.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    period: Mapped[int | None]
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(String(200), default="")
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
