"""Which operator alerts were told to the group robots: one row per alert while it stands."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class AlertNotice(Base):
    __tablename__ = "alert_notice"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # kind:subject
    raised_at: Mapped[datetime]
