"""Sales channels: own site, mini-program, H5, marketplaces, live sellers, B2B."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, str_enum


class ChannelKind(enum.Enum):
    OWN_SITE = "OWN_SITE"
    MINI_PROGRAM = "MINI_PROGRAM"
    H5 = "H5"
    MARKETPLACE = "MARKETPLACE"
    LIVE = "LIVE"
    B2B = "B2B"


class SettlementCycle(enum.Enum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"


class Channel(Base):
    __tablename__ = "channel"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ChannelKind] = mapped_column(str_enum(ChannelKind))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    # Commission in basis points (1/100 of a percent), exact.
    commission_bp: Mapped[int] = mapped_column(default=0)
    settlement_cycle: Mapped[SettlementCycle] = mapped_column(
        str_enum(SettlementCycle), default=SettlementCycle.MONTHLY
    )
    # The IANA zone whose days, weeks and months the settlement periods follow.
    settlement_time_zone: Mapped[str] = mapped_column(
        String(64), default="Asia/Shanghai", server_default="Asia/Shanghai"
    )
    active: Mapped[bool] = mapped_column(default=True)
    # Public storefronts allow anonymous catalog reads and guest orders.
    public: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    archived_at: Mapped[datetime | None]
