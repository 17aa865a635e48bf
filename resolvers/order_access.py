"""The order a command names, locked for the command and checked against the caller."""

from __future__ import annotations

from domain.access import Principal, may_read_order
from models import Channel as ChannelRow
from models import Order as OrderRow
from schema.errors import UserError
from services.core.unit_of_work import UnitOfWork

NOT_FOUND = UserError(field="orderId", message="no such order", code="NOT_FOUND")


async def locked_order(uow: UnitOfWork, principal: Principal, pk: int) -> tuple[OrderRow, ChannelRow] | None:
    """The order row, locked until the command commits, and its channel; None when it is
    unknown or not the caller's to act on (both look the same to the caller)."""
    row = await uow.session.get(OrderRow, pk, with_for_update=True)
    channel = await uow.session.get(ChannelRow, row.channel_id) if row else None
    if row is None or channel is None or not may_read_order(principal, channel.code, row.number):
        return None
    return row, channel
