"""Inventory: the code pool of code-backed SKUs and counters of top-up SKUs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from domain.catalog import CodeStatus
from models.base import Base, str_enum, utcnow


# The codes the unique digest covers: every one but VOID.
IN_POOL = "status <> 'VOID'"
AVAILABLE = "status = 'AVAILABLE'"


class CardCode(Base):
    """One card code or serial. The secret is stored only encrypted (AES-GCM)."""

    __tablename__ = "card_code"
    __table_args__ = (
        # A keyed hash of the secret finds duplicates without decrypting anything. A secret
        # is in the pool once, whatever SKU it was imported into; a VOID code is out of it.
        Index("uq_card_code_digest", "secret_digest", unique=True,
              postgresql_where=text(IN_POOL), sqlite_where=text(IN_POOL)),
        # The older, per-SKU rule: it also keeps a VOID code from coming back to its own SKU.
        UniqueConstraint("sku_id", "secret_digest", name="uq_card_code_sku_digest"),
        Index("ix_card_code_sku_status", "sku_id", "status"),
        # A SKU's codes still for sale, in id order: a claim reads the first ones that no one
        # holds instead of walking past every code the sale already reserved.
        Index("ix_card_code_available", "sku_id", "id",
              postgresql_where=text(AVAILABLE), sqlite_where=text(AVAILABLE)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    secret_digest: Mapped[str] = mapped_column(String(64))
    number: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[CodeStatus] = mapped_column(str_enum(CodeStatus), default=CodeStatus.AVAILABLE)
    uses_left: Mapped[int] = mapped_column(default=1)
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The order line holding this code while RESERVED, and after it is SOLD.
    order_line_id: Mapped[int | None] = mapped_column(ForeignKey("order_line.id"), index=True)


class StockLevel(Base):
    """One slot of a direct top-up SKU's counter stock (services/inventory/slots.py).

    The SKU's stock is spread over its slots so that concurrent orders take units from
    different rows instead of queueing on one; its totals are the sums over them. Slots
    are numbered from 0; a SKU with one slot is a single counter.
    """

    __tablename__ = "stock_level"

    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"), primary_key=True)
    slot: Mapped[int] = mapped_column(primary_key=True, default=0)
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
