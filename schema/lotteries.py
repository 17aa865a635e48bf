"""Lottery types: the lottery as published (commitment, then seed and winners) and an entry."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import Lottery as LotteryRow
from models import LotteryEntry as EntryRow
from schema.relay import encode_id

LOTTERY_ALGORITHM = (
    "for i in 0..winners-1: among the entry numbers not drawn yet (ascending), take the one at index "
    "uniform(seed, 'lottery:<id>', i, count left); uniform as for blind boxes (docs/draws.md)"
)


@strawberry.type(description="A lottery (抽奖): its window, draw time, prize, commitment, and after the draw its seed and winners.")
class Lottery:
    id: strawberry.ID
    name: str
    status: str = strawberry.field(description="OPEN (taking entries until closesAt) or DRAWN.")
    opens_at: datetime
    closes_at: datetime
    draw_at: datetime
    drawn_at: datetime | None
    winners: int
    per_buyer_limit: int
    entry_count: int = strawberry.field(description="Entries are numbered 1 to entryCount; the draw runs over them.")
    prize: str = strawberry.field(description="COUPON (a single-use code of a campaign) or CODE (a card code).")
    commitment: str = strawberry.field(description="SHA-256 of the seed, hex, published at creation.")
    seed: str | None = strawberry.field(description="The seed, hex; only once DRAWN.")
    winning_numbers: list[int] | None = strawberry.field(description="Winning entry numbers in draw order, once DRAWN.")
    algorithm: str

    @classmethod
    def from_model(cls, row: LotteryRow, winning: list[int] | None) -> Lottery:
        return cls(
            id=encode_id("Lottery", row.id), name=row.name, status=row.status, opens_at=row.opens_at,
            closes_at=row.closes_at, draw_at=row.draw_at, drawn_at=row.drawn_at, winners=row.winners,
            per_buyer_limit=row.per_buyer_limit, entry_count=row.entry_count,
            prize="COUPON" if row.campaign_id is not None else "CODE", commitment=row.commitment,
            seed=row.revealed_seed if row.status == "DRAWN" else None,
            winning_numbers=winning if row.status == "DRAWN" else None, algorithm=LOTTERY_ALGORITHM,
        )


@strawberry.type(description="One entry, as its token reads it: WON with the prize, LOST, or ENTERED before the draw.")
class LotteryEntry:
    number: int
    status: str
    entered_at: datetime
    decided_at: datetime | None
    prize: str | None = strawberry.field(description="A winner's coupon code or card code.")
    lottery: Lottery

    @classmethod
    def from_model(cls, row: EntryRow, lottery: Lottery, prize: str | None) -> LotteryEntry:
        return cls(number=row.number, status=row.status, entered_at=row.created_at, decided_at=row.decided_at,
                   prize=prize, lottery=lottery)
