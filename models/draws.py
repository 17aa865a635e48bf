"""Blind boxes: each box's pool with its published weights, its seed rounds and every draw.

A round holds the seed the box's draws come from: sealed (services/core/secret_box.py)
while it is secret, its commitment published from the start, the seed itself written in
clear only when an operator reveals the round. A draw records what the buyer's unit was
drawn from (the eligible items and weights of each attempt), so anyone can check it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

OPEN, CLOSED, REVEALED = "OPEN", "CLOSED", "REVEALED"


class BlindBoxItem(Base):
    """One SKU a box can hold, its weight, and its place in the published order."""

    __tablename__ = "blind_box_item"

    box_sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"), primary_key=True)
    item_sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"), primary_key=True, index=True)
    weight: Mapped[int]
    position: Mapped[int]


class DrawRound(Base):
    """A seed of a box: OPEN (draws come from it), CLOSED (no more draws, the seed still
    secret while draws of it are unsettled), REVEALED (the seed published)."""

    __tablename__ = "draw_round"
    __table_args__ = (
        UniqueConstraint("box_sku_id", "number", name="uq_draw_round_box_number"),
        Index("ix_draw_round_box_status", "box_sku_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    box_sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    seed_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    commitment: Mapped[str] = mapped_column(String(64))
    revealed_seed: Mapped[str | None] = mapped_column(String(64))  # hex, once revealed
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    revealed_at: Mapped[datetime | None]


class BoxDraw(Base):
    """One unit of a box in an order: what it was drawn from, each attempt, and the result."""

    __tablename__ = "box_draw"
    __table_args__ = (
        UniqueConstraint("line_id", "unit", name="uq_box_draw_line_unit"),
        Index("ix_box_draw_round", "round_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("draw_round.id"))
    box_sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"))
    order_number: Mapped[str] = mapped_column(String(32))
    unit: Mapped[int]
    # [{"eligible": [[SKU code, weight], ...], "picked": SKU code}, ...], one per attempt.
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    item_sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
