"""Order reads for loaders and lists: batched by key, paged by keyset."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.orders import OrderStatus
from models import Channel, Order, OrderEvent, OrderLine


async def status_of(session: AsyncSession, order_id: int) -> tuple[OrderStatus, datetime] | None:
    """The order's status now and when it last changed (a live feed that may have missed events)."""
    row = (await session.execute(select(Order.status, Order.updated_at).where(Order.id == order_id))).first()
    if row is None:
        return None
    at = row.updated_at if row.updated_at.tzinfo is not None else row.updated_at.replace(tzinfo=UTC)
    return row.status, at


async def lines_of_orders(session: AsyncSession, order_ids: Sequence[int]) -> dict[int, list[OrderLine]]:
    grouped: dict[int, list[OrderLine]] = defaultdict(list)
    for line in await session.scalars(select(OrderLine).where(OrderLine.order_id.in_(order_ids)).order_by(OrderLine.id)):
        grouped[line.order_id].append(line)
    return grouped


async def events_of_orders(session: AsyncSession, order_ids: Sequence[int]) -> dict[int, list[OrderEvent]]:
    grouped: dict[int, list[OrderEvent]] = defaultdict(list)
    for event in await session.scalars(select(OrderEvent).where(OrderEvent.order_id.in_(order_ids)).order_by(OrderEvent.id)):
        grouped[event.order_id].append(event)
    return grouped


async def channels_by_id(session: AsyncSession, ids: Sequence[int]) -> dict[int, Channel]:
    return {row.id: row for row in await session.scalars(select(Channel).where(Channel.id.in_(ids)))}


@dataclass(frozen=True, slots=True)
class OrderFilter:
    channel_id: int | None = None
    status: OrderStatus | None = None
    placed_from: datetime | None = None
    placed_to: datetime | None = None


async def order_page(
    session: AsyncSession, f: OrderFilter, *, before_id: int | None, limit: int
) -> tuple[list[Order], bool]:
    """Newest first, keyset on id; and whether more follow."""
    query = select(Order)
    if f.channel_id is not None:
        query = query.where(Order.channel_id == f.channel_id)
    if f.status is not None:
        query = query.where(Order.status == f.status)
    if f.placed_from is not None:
        query = query.where(Order.created_at >= f.placed_from)
    if f.placed_to is not None:
        query = query.where(Order.created_at < f.placed_to)
    if before_id is not None:
        query = query.where(Order.id < before_id)
    rows = list(await session.scalars(query.order_by(Order.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
