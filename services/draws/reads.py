"""What a box publishes: its items, weights and stock, each round's commitment, and once a
round is revealed its seed with every draw it made, so anyone can recompute them.

A CLOSED round's seed is shown only when none of its draws is still unsettled (an order
that could yet be paid, delivered or let go): before that, the seed would tell a buyer what
an undelivered box holds, and one who disliked it could let the order expire.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.draws import Attempt, Weighted, recheck
from domain.orders import OrderStatus
from models import BoxDraw, DrawRound, Order, Sku
from models.draws import CLOSED, OPEN, REVEALED
from services.core.secret_box import SecretBox
from services.draws.boxes import in_stock, pool_of
from services.draws.seeds import seed_of

UNSETTLED = (
    OrderStatus.PENDING_RISK, OrderStatus.REVIEW, OrderStatus.PENDING_PAYMENT, OrderStatus.PAID,
    OrderStatus.FULFILLING, OrderStatus.FAILED,
)


@dataclass(frozen=True, slots=True)
class ItemView:
    sku_id: int
    code: str
    name: str
    weight: int
    in_stock: bool


@dataclass(frozen=True, slots=True)
class BoxView:
    items: list[ItemView]
    round: int | None  # the open round's number
    commitment: str | None  # the open round's commitment
    frozen: bool  # a unit has been drawn: items and weights can no longer change


@dataclass(frozen=True, slots=True)
class DrawView:
    order_number: str
    unit: int
    item: str
    attempts: list[Attempt]
    valid: bool  # the seed gives exactly these attempts (domain/draws.recheck)


@dataclass(frozen=True, slots=True)
class RoundView:
    number: int
    status: str
    commitment: str
    seed: str | None  # hex, once revealed
    opened_at: datetime
    closed_at: datetime | None
    draw_count: int
    unsettled: int
    round_id: int


async def box_views(session: AsyncSession, box_sku_ids: Sequence[int], now: datetime) -> dict[int, BoxView]:
    """Each box's published rules, in five statements however many boxes are asked for."""
    pools = await pool_of(session, list(box_sku_ids))
    stocked = await in_stock(session, [sku for items in pools.values() for sku, _ in items], now)
    current = {
        row.box_sku_id: row for row in await session.scalars(
            select(DrawRound).where(DrawRound.box_sku_id.in_(box_sku_ids), DrawRound.status == OPEN)
        )
    }
    drawn = set(await session.scalars(
        select(BoxDraw.box_sku_id).where(BoxDraw.box_sku_id.in_(box_sku_ids)).distinct()
    ))
    return {
        box: BoxView(
            items=[ItemView(sku.id, sku.code, sku.name, weight, sku.id in stocked) for sku, weight in items],
            round=current[box].number if box in current else None,
            commitment=current[box].commitment if box in current else None,
            frozen=box in drawn,
        )
        for box, items in pools.items()
    }


async def box_stock(session: AsyncSession, box_sku_ids: list[int], stock: dict[int, int]) -> dict[int, int]:
    """Units each box can still sell: the sum of its items' available units (`stock`, by SKU id)."""
    pools = await pool_of(session, box_sku_ids)
    return {box: sum(stock.get(sku.id, 0) for sku, _ in items) for box, items in pools.items()}


async def rounds_of(session: AsyncSession, seeds: SecretBox, box_sku_id: int) -> list[RoundView]:
    """Every round of the box, the newest first; the draws of revealed ones."""
    rounds = list(await session.scalars(
        select(DrawRound).where(DrawRound.box_sku_id == box_sku_id).order_by(DrawRound.number.desc())
    ))
    counts = {
        round_id: (int(total), int(open_ or 0))
        for round_id, total, open_ in await session.execute(
            select(BoxDraw.round_id, func.count(), func.sum(case((Order.status.in_(UNSETTLED), 1), else_=0)))
            .join(Order, Order.id == BoxDraw.order_id)
            .where(BoxDraw.box_sku_id == box_sku_id)
            .group_by(BoxDraw.round_id)
        )
    }
    views: list[RoundView] = []
    for round_ in rounds:
        total, unsettled = counts.get(round_.id, (0, 0))
        revealed = round_.status == REVEALED or (round_.status == CLOSED and unsettled == 0)
        seed = seed_of(seeds, round_) if revealed else None
        views.append(RoundView(
            number=round_.number, status=REVEALED if revealed else round_.status, commitment=round_.commitment,
            seed=seed.hex() if seed is not None else None, opened_at=round_.opened_at, closed_at=round_.closed_at,
            draw_count=total, unsettled=unsettled, round_id=round_.id,
        ))
    return views


async def draws_of(session: AsyncSession, round_id: int, seed: bytes, *, first: int, offset: int) -> list[DrawView]:
    """A page of a revealed round's draws, in the order they were made, each rechecked."""
    views: list[DrawView] = []
    for row in await session.scalars(
        select(BoxDraw).where(BoxDraw.round_id == round_id).order_by(BoxDraw.id).limit(first).offset(offset)
    ):
        attempts = attempts_of(row.attempts)
        label = f"{row.order_number}:{row.unit}"
        views.append(DrawView(row.order_number, row.unit, attempts[-1].picked, attempts, recheck(seed, label, attempts) is None))
    return views


def attempts_of(stored: list[dict[str, Any]]) -> list[Attempt]:
    return [
        Attempt(tuple(Weighted(str(item), int(weight)) for item, weight in attempt["eligible"]), str(attempt["picked"]))
        for attempt in stored
    ]


async def drawn_items(session: AsyncSession, line_id: int) -> list[tuple[int, Sku]]:
    """(unit, SKU drawn) of a box line."""
    return [(unit, sku) for unit, sku in await session.execute(
        select(BoxDraw.unit, Sku).join(Sku, Sku.id == BoxDraw.item_sku_id)
        .where(BoxDraw.line_id == line_id).order_by(BoxDraw.unit)
    )]
