"""What the operators' marketplace queries read: the trades taken, newest first, and the
connections with their cursors."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Channel, MarketplaceConnection, MarketplaceOrder, Order


async def trades(
    session: AsyncSession, *, channel: str | None, status: str | None, report_status: str | None,
    before_id: int | None, limit: int,
) -> tuple[list[tuple[MarketplaceOrder, str, str | None]], bool]:
    """A page of trade records with their channel's code and our order's number, and whether more follow."""
    query = (
        select(MarketplaceOrder, Channel.code, Order.number)
        .join(Channel, Channel.id == MarketplaceOrder.channel_id)
        .outerjoin(Order, Order.id == MarketplaceOrder.order_id)
    )
    if channel is not None:
        query = query.where(Channel.code == channel)
    if status is not None:
        query = query.where(MarketplaceOrder.status == status)
    if report_status is not None:
        query = query.where(MarketplaceOrder.report_status == report_status)
    if before_id is not None:
        query = query.where(MarketplaceOrder.id < before_id)
    rows = [(record, code, number) for record, code, number in
            await session.execute(query.order_by(MarketplaceOrder.id.desc()).limit(limit + 1))]
    return rows[:limit], len(rows) > limit


async def connections(session: AsyncSession) -> list[tuple[MarketplaceConnection, str]]:
    rows = await session.execute(
        select(MarketplaceConnection, Channel.code).join(Channel, Channel.id == MarketplaceConnection.channel_id)
        .order_by(MarketplaceConnection.id)
    )
    return [(row, code) for row, code in rows]


async def trade(session: AsyncSession, record_id: int) -> tuple[MarketplaceOrder, str, str | None] | None:
    rows, _ = await trades(session, channel=None, status=None, report_status=None, before_id=record_id + 1, limit=1)
    return rows[0] if rows and rows[0][0].id == record_id else None


async def trade_of_order(session: AsyncSession, order_id: int) -> tuple[MarketplaceOrder, str, str | None] | None:
    record_id = await session.scalar(select(MarketplaceOrder.id).where(MarketplaceOrder.order_id == order_id))
    return None if record_id is None else await trade(session, record_id)
