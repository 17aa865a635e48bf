"""Lotteries (抽奖): entries within a window, a draw at a set time from a committed seed, prizes.

The seed is sealed (services/core/secret_box.py) with its commitment published from the start;
the draw writes the seed in clear with the winners, once. Entries are numbered 1, 2, ... in the
order they were taken: the numbers are what the published draw runs over.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

OPEN, DRAWN = "OPEN", "DRAWN"
ENTERED, WON, LOST = "ENTERED", "WON", "LOST"


class Lottery(Base):
    __tablename__ = "lottery"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"), index=True)
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    draw_at: Mapped[datetime]
    winners: Mapped[int]
    per_buyer_limit: Mapped[int]
    # The prize: a single-use code of a campaign, or one code of a CARD_CODE SKU.
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"))
    prize_sku_id: Mapped[int | None] = mapped_column(ForeignKey("sku.id"))
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    entry_count: Mapped[int] = mapped_column(default=0)
    seed_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    commitment: Mapped[str] = mapped_column(String(64))
    revealed_seed: Mapped[str | None] = mapped_column(String(64))
    drawn_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LotteryEntry(Base):
    """One entry: its number in the draw, the buyer as entered (canonical), and the outcome."""

    __tablename__ = "lottery_entry"
    __table_args__ = (
        UniqueConstraint("lottery_id", "number", name="uq_lottery_entry_number"),
        UniqueConstraint("token_digest", name="uq_lottery_entry_token"),
        Index("ix_lottery_entry_lottery_status", "lottery_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lottery_id: Mapped[int] = mapped_column(ForeignKey("lottery.id"))
    number: Mapped[int]
    # The buyer's token reads the entry (lotteryEntry); only its digest is stored.
    token_digest: Mapped[str] = mapped_column(String(64))
    buyer_phone: Mapped[str | None] = mapped_column(String(32))
    buyer_email: Mapped[str | None] = mapped_column(String(254))
    device_id: Mapped[str | None] = mapped_column(String(128))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=ENTERED)
    # A winner's prize, sealed: the coupon code, or the card code's secret.
    prize_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    prize_code_id: Mapped[int | None] = mapped_column(ForeignKey("card_code.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
