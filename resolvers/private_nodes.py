"""`node(id:)` for objects that belong to one channel: keys and price changes.

Each is returned only to operators and to keys of its own channel; to anyone else a
guessed ID looks exactly like an unknown one.
"""

from __future__ import annotations

from sqlalchemy import select

from domain.access import may_read_channel_private, may_read_order
from models import ApiKey as ApiKeyRow
from models import Channel as ChannelRow
from models import PriceChange as PriceChangeRow
from models import Sku as SkuRow
from resolvers.settlement import settlement_node
from schema.channel import ChannelScope
from schema.context import Info
from schema.keys import ApiKey
from schema.orders import Order
from schema.pricing import PriceChange
from schema.relay import Node


async def private_node(info: Info, type_name: str, pk: int) -> Node | None:
    principal = info.context.principal
    if type_name == "Order":
        info.context.read_from_primary()
        row = await info.context.loaders.order_by_id.load(pk)
        channel = await info.context.loaders.channel_by_id.load(row.channel_id) if row else None
        if row is None or channel is None or not may_read_order(principal, channel.code, row.number):
            return None
        return Order.from_model(row, ChannelScope.of(channel))
    if principal.role is None:
        return None
    if type_name in ("RiskVerdict", "RiskRule"):
        from resolvers.risk import risk_node  # risk resolvers import the order types: import late

        return await risk_node(info, type_name, pk)
    if type_name in ("SettlementStatement", "ReconciliationReport"):
        return await settlement_node(info, type_name, pk)
    async with info.context.db.fresh_sessions() as session:  # keys as they now are (a revocation)
        if type_name == "ApiKey":
            found = (
                await session.execute(
                    select(ApiKeyRow, ChannelRow.code)
                    .outerjoin(ChannelRow, ChannelRow.id == ApiKeyRow.channel_id)
                    .where(ApiKeyRow.id == pk)
                )
            ).first()
            if found is None:
                return None
            key, code = found
            if principal.is_admin or (code is not None and may_read_channel_private(principal, code)):
                return ApiKey.from_model(key, code)
            return None
        if type_name == "PriceChange":
            found = (
                await session.execute(
                    select(PriceChangeRow, ChannelRow.code, SkuRow.code, SkuRow.currency)
                    .join(ChannelRow, ChannelRow.id == PriceChangeRow.channel_id)
                    .join(SkuRow, SkuRow.id == PriceChangeRow.sku_id)
                    .where(PriceChangeRow.id == pk)
                )
            ).first()
            if found is None or not may_read_channel_private(principal, found[1]):
                return None
            return PriceChange.from_model(*found)
    return None
