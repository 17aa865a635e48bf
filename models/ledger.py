"""The ledger: transactions (one per business event, unique by key) and their postings.

Entries are only ever inserted. The one later write is the claim of a confirmed
statement (`channel_statement_id`, `supplier_statement_id`), set once from NULL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from domain.ledger import Account, Kind
from models.base import Base, str_enum


class LedgerTransaction(Base):
    __tablename__ = "ledger_transaction"

    id: Mapped[int] = mapped_column(primary_key=True)
    # "delivery:<line>", "refund:<line>", "top-up:<channel>:<reference>", ...: the same
    # event posted twice meets this unique key and posts nothing.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[Kind] = mapped_column(str_enum(Kind))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(120), default="system")


class LedgerEntry(Base):
    __tablename__ = "ledger_entry"
    __table_args__ = (
        # Statements aggregate a party's unclaimed entries of a period, or a statement's own.
        Index("ix_ledger_entry_channel_at", "channel_id", "at"),
        Index("ix_ledger_entry_supplier_at", "supplier_id", "at"),
        Index("ix_ledger_entry_channel_statement", "channel_statement_id"),
        Index("ix_ledger_entry_supplier_statement", "supplier_statement_id"),
        Index("ix_ledger_entry_line", "line_id"),
        Index("ix_ledger_entry_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transaction.id"), index=True)
    kind: Mapped[Kind] = mapped_column(str_enum(Kind))
    account: Mapped[Account] = mapped_column(str_enum(Account))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channel.id"))
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("supplier.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"))
    line_id: Mapped[int | None] = mapped_column(ForeignKey("order_line.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # debit positive
    currency: Mapped[str] = mapped_column(String(3))
    at: Mapped[datetime]
    channel_statement_id: Mapped[int | None] = mapped_column(ForeignKey("settlement_statement.id"))
    supplier_statement_id: Mapped[int | None] = mapped_column(ForeignKey("settlement_statement.id"))
