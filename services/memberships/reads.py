"""Memberships as callers read them: the row, its channel and SKU, its history and orders."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.memberships import MembershipStatus
from models import Channel, Membership, MembershipEvent, Order, Sku


@dataclass(frozen=True, slots=True)
class MembershipView:
    row: Membership
    channel: str
    currency: str
    sku_code: str
    events: list[tuple[MembershipEvent, Order | None]]


async def views(session: AsyncSession, rows: list[Membership]) -> list[MembershipView]:
    """Each membership with what it shows, in three statements whatever the page size."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    channels = {c.id: c for c in await session.scalars(select(Channel).where(Channel.id.in_({r.channel_id for r in rows})))}
    skus = {pk: code for pk, code in await session.execute(select(Sku.id, Sku.code).where(Sku.id.in_({r.sku_id for r in rows})))}
    history: dict[int, list[tuple[MembershipEvent, Order | None]]] = {pk: [] for pk in ids}
    for event, order in await session.execute(
        select(MembershipEvent, Order).outerjoin(Order, Order.id == MembershipEvent.order_id)
        .where(MembershipEvent.membership_id.in_(ids)).order_by(MembershipEvent.id)
    ):
        history[event.membership_id].append((event, order))
    return [MembershipView(row, channels[row.channel_id].code, channels[row.channel_id].currency, skus[row.sku_id],
                           history[row.id]) for row in rows]


async def page(
    session: AsyncSession, *, channel_id: int | None, status: MembershipStatus | None, before: int | None, size: int,
) -> list[Membership]:
    """Newest first, `size` of them, below the id `before` (a cursor)."""
    query = select(Membership).order_by(Membership.id.desc()).limit(size)
    if channel_id is not None:
        query = query.where(Membership.channel_id == channel_id)
    if status is not None:
        query = query.where(Membership.status == status)
    if before is not None:
        query = query.where(Membership.id < before)
    return list(await session.scalars(query))
