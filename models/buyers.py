"""Buyer profiles (用户画像), recomputed from orders and verdicts; keyed by a pseudonym, never a contact."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from domain.buyers import Segment
from models.base import Base, str_enum, utcnow


class BuyerProfile(Base):
    __tablename__ = "buyer_profile"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)  # domain.buyers.buyer_key
    contact: Mapped[str | None] = mapped_column(String(64))  # masked; null once erased
    segment: Mapped[Segment] = mapped_column(str_enum(Segment), index=True)
    attempts: Mapped[int]
    orders: Mapped[int]
    coupon_orders: Mapped[int]
    reviews: Mapped[int]
    rejects: Mapped[int]
    fraud_labels: Mapped[int]
    first_at: Mapped[datetime | None]
    last_at: Mapped[datetime | None]
    spent: Mapped[dict[str, Any]] = mapped_column(JSON)  # currency -> minor units
    channels: Mapped[dict[str, Any]] = mapped_column(JSON)  # channel code -> orders
    categories: Mapped[dict[str, Any]] = mapped_column(JSON)  # category code -> orders
    refreshed_at: Mapped[datetime] = mapped_column(default=utcnow)
