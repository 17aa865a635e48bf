"""What each event says: the `data` of its body, in the API's own names and IDs."""

from __future__ import annotations

import base64
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.orders import OrderStatus
from models import Channel, Order, SettlementStatement
from services.webhooks.events import instant


def global_id(type_name: str, pk: int) -> str:
    """The object's ID as the GraphQL API gives it (schema/relay.py encode_id), so a
    receiver can fetch it with `node(id:)`."""
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode("ascii")


def money(fen: int, currency: str) -> dict[str, str]:
    return {"amount": str(Decimal(fen).scaleb(-2)), "currency": currency}


async def order(session: AsyncSession, row: Order, previous: OrderStatus | None, at: datetime) -> dict[str, object]:
    channel = await session.scalar(select(Channel.code).where(Channel.id == row.channel_id))
    return {
        "orderId": global_id("Order", row.id),
        "number": row.number,
        "channel": channel,
        # A partner's own order number: the idempotency key it placed the order with.
        "externalOrderNumber": row.idempotency_key,
        "status": row.status.value,
        "previousStatus": previous.value if previous is not None else None,
        "total": money(row.total_fen, row.currency),
        "at": instant(at),
    }


def statement(row: SettlementStatement) -> dict[str, object]:
    return {
        "statementId": global_id("SettlementStatement", row.id),
        "party": row.party.value,
        "code": row.code,
        "status": row.status.value,
        "periodStart": instant(row.period_start),
        "periodEnd": instant(row.period_end),
    }
