"""Trusted documents: the GraphQL documents operators registered, for everyone or for one key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class TrustedDocument(Base):
    __tablename__ = "trusted_document"
    __table_args__ = (UniqueConstraint("key_prefix", "digest", name="uq_trusted_document_key_prefix_digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The SHA-256 of the document's exact text, in lower-case hex: how clients name it.
    digest: Mapped[str] = mapped_column(String(64))
    # The key it is registered for (its clear prefix); "": for every caller.
    key_prefix: Mapped[str] = mapped_column(String(16), default="")
    body: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(120), default="")  # the operation's name, to read lists by
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")
