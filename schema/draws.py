"""Blind box types: the published pool and odds, seed rounds (commitment, then seed), draws."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from domain.draws import Attempt
from schema.context import Info
from schema.errors import BadUserInput
from schema.relay import encode_id
from services.draws import reads

_FOUR_PLACES = Decimal("0.0001")


@strawberry.type(description="One SKU a blind box can hold, its published weight and its chance now.")
class BlindBoxItem:
    sku_id: strawberry.ID
    code: str
    name: str
    weight: int
    in_stock: bool = strawberry.field(description="An item without stock is never drawn: the odds skip it.")
    chance: str = strawberry.field(description="Its weight over the weights of the items in stock, to 4 places.")


@strawberry.type(description="A blind box's published rules: its items and weights, and the open round's commitment.")
class BlindBox:
    items: list[BlindBoxItem]
    round: int | None = strawberry.field(description="The open round: the seed the next draws come from.")
    commitment: str | None = strawberry.field(description="SHA-256 of the open round's seed, hex; the seed comes after.")
    frozen: bool = strawberry.field(description="A unit was drawn: items and weights can no longer change.")
    algorithm: str = strawberry.field(description="How each draw is computed from the seed; see docs/draws.md.")

    @classmethod
    def of(cls, view: reads.BoxView) -> BlindBox:
        total = sum(item.weight for item in view.items if item.in_stock)
        return cls(
            items=[
                BlindBoxItem(
                    sku_id=encode_id("Sku", item.sku_id), code=item.code, name=item.name, weight=item.weight,
                    in_stock=item.in_stock,
                    chance=str((Decimal(item.weight) / total).quantize(_FOUR_PLACES)) if item.in_stock and total else "0.0000",
                )
                for item in view.items
            ],
            round=view.round, commitment=view.commitment, frozen=view.frozen, algorithm=ALGORITHM,
        )


ALGORITHM = (
    "HMAC-SHA256(seed, '<orderNumber>:<unit>:<attempt>:<k>'), first 8 bytes big-endian, rejection-sampled below "
    "2^64 - 2^64 mod W, mod W; the first eligible item (published order) whose running weight exceeds it"
)


@strawberry.type(description="One weighted item of a draw's eligible set.")
class DrawWeight:
    item: str
    weight: int


@strawberry.type(description="One attempt at drawing a unit: the items eligible then, and the one drawn.")
class DrawAttempt:
    eligible: list[DrawWeight]
    picked: str

    @classmethod
    def of(cls, attempt: Attempt) -> DrawAttempt:
        return cls(eligible=[DrawWeight(item=w.item, weight=w.weight) for w in attempt.eligible], picked=attempt.picked)


@strawberry.type(description="One unit of a box in an order, as drawn: checkable against the revealed seed.")
class BoxDraw:
    order_number: str
    unit: int
    item: str
    attempts: list[DrawAttempt]
    valid: bool = strawberry.field(description="The server's own recheck from the revealed seed.")


MAX_DRAWS_PAGE = 500


@strawberry.type(description="A seed of a box: committed before its draws, revealed once they are all settled.")
class DrawRound:
    number: int
    status: str = strawberry.field(description="OPEN, CLOSED (seed still secret) or REVEALED.")
    commitment: str
    seed: str | None = strawberry.field(description="The seed, hex; only once REVEALED.")
    opened_at: datetime
    closed_at: datetime | None
    draw_count: int
    unsettled: int = strawberry.field(description="Draws whose orders may still be paid, delivered or let go.")
    _round_id: strawberry.Private[int]

    @classmethod
    def of(cls, view: reads.RoundView) -> DrawRound:
        return cls(
            number=view.number, status=view.status, commitment=view.commitment, seed=view.seed,
            opened_at=view.opened_at, closed_at=view.closed_at, draw_count=view.draw_count, unsettled=view.unsettled,
            _round_id=view.round_id,
        )

    @strawberry.field(description=f"The round's draws in the order they were made, once REVEALED (null before); "
                                  f"`first` at most {MAX_DRAWS_PAGE}.")
    async def draws(self, info: Info, first: int = 100, offset: int = 0) -> list[BoxDraw] | None:
        if self.seed is None:
            return None
        if not 1 <= first <= MAX_DRAWS_PAGE or offset < 0:
            raise BadUserInput(f"first is 1 to {MAX_DRAWS_PAGE}, offset 0 or more", field="first")
        async with info.context.db.fresh_sessions() as session:
            found = await reads.draws_of(session, self._round_id, bytes.fromhex(self.seed), first=first, offset=offset)
        return [
            BoxDraw(order_number=d.order_number, unit=d.unit, item=d.item,
                    attempts=[DrawAttempt.of(a) for a in d.attempts], valid=d.valid)
            for d in found
        ]


@strawberry.type(description="What one unit of a blind box turned out to hold; shown once the line is delivered.")
class DrawnItem:
    unit: int
    sku_id: strawberry.ID
    code: str
    name: str


async def blind_box(info: Info, sku_id: int) -> BlindBox:
    return BlindBox.of(await info.context.loaders.blind_box_by_sku.load(sku_id))


async def drawn(info: Info, line_id: int) -> list[DrawnItem]:
    async with info.context.db.fresh_sessions() as session:
        found = await reads.drawn_items(session, line_id)
    return [DrawnItem(unit=unit, sku_id=encode_id("Sku", sku.id), code=sku.code, name=sku.name) for unit, sku in found]
