"""API keys: stored as a hash; only a short prefix is kept in clear to find them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from domain.access import Role
from models.base import Base, str_enum, utcnow


class ApiKey(Base):
    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    role: Mapped[Role] = mapped_column(str_enum(Role))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channel.id"))
    name: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # Null: the key works until revoked; else it is refused from this moment on.
    expires_at: Mapped[datetime | None]
    # The key's own budget of query cost; null: its role's (domain/admission.py).
    budget_maximum: Mapped[int | None]
    budget_restore_rate: Mapped[int | None]
