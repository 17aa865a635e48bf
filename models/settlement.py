"""Settlement statements of a channel or supplier per period, and reconciliation reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domain.settlement import Discrepancy, Party, StatementStatus
from models.base import Base, str_enum, utcnow


class SettlementStatement(Base):
    __tablename__ = "settlement_statement"
    __table_args__ = (
        # One statement per party and period: generating it again recomputes this one.
        UniqueConstraint("party", "party_id", "period_start", "period_end", name="uq_settlement_statement_period"),
        Index("ix_settlement_statement_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    party: Mapped[Party] = mapped_column(str_enum(Party))
    party_id: Mapped[int]  # a channel's or a supplier's id
    code: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channel.id"), index=True)
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("supplier.id"), index=True)
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    # The IANA zone whose days, weeks or months the period is: the channel's settlement zone.
    time_zone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai", server_default="Asia/Shanghai")
    status: Mapped[StatementStatus] = mapped_column(str_enum(StatementStatus))
    currency: Mapped[str] = mapped_column(String(3))
    gross_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    commission_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    margin_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    prepaid_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # What coupons took off the buyers' payments for the lines (gross is net of it).
    discount_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    net_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    order_count: Mapped[int] = mapped_column(default=0)
    generated_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]


class Reconciliation(Base):
    """One comparison of the other side's records with a statement; rows are only added."""

    __tablename__ = "reconciliation"

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("settlement_statement.id"), index=True)
    actor: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    records: Mapped[int]
    matched: Mapped[int]
    missing_on_their_side: Mapped[int]
    missing_on_our_side: Mapped[int]
    amount_mismatches: Mapped[int]
    status_mismatches: Mapped[int]


class ReconciliationItem(Base):
    __tablename__ = "reconciliation_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    reconciliation_id: Mapped[int] = mapped_column(ForeignKey("reconciliation.id"), index=True)
    kind: Mapped[Discrepancy] = mapped_column(str_enum(Discrepancy))
    order_number: Mapped[str] = mapped_column(String(128))
    our_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    their_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    our_status: Mapped[str | None] = mapped_column(String(32))
    their_status: Mapped[str | None] = mapped_column(String(32))
