"""Live feeds: stock of a channel, one order's status, and the operators' dashboard."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import orjson
import strawberry

from broker import MessagesLost
from domain.access import may_read_order
from domain.orders import OrderStatus as StatusValue
from resolvers.access import readable_channel
from schema.analytics import DashboardSnapshot
from schema.context import Info
from schema.errors import Forbidden
from schema.live import OrderStatusChange, SharedStream, StockChange
from schema.sales import SaleEventUpdate
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_pk, encode_id
from services.analytics.dashboard_feed import feed_for
from services.orders.events import ORDER_TOPIC
from services.orders.reads import status_of


def _sku_ids(ids: list[strawberry.ID] | None) -> set[int] | None:
    if ids is None:
        return None
    wanted = set()
    for index, global_id in enumerate(ids):
        wanted.add(decode_pk(global_id, "Sku", field=f"skuIds.{index}"))
    return wanted


@strawberry.type
class Subscription:
    @strawberry.subscription(description="The channel's available-to-sell after each change (optionally of some SKUs).")
    async def stock_changed(
        self, info: Info, channel: str, sku_ids: list[strawberry.ID] | None = None
    ) -> AsyncGenerator[StockChange, None]:
        # Checked before the stream starts, so a refusal is an error, not a broken stream.
        row = await readable_channel(info, channel)
        wanted = _sku_ids(sku_ids)
        # The events depend on the channel and the SKUs only: subscribers asking alike share them.
        key = ("stockChanged", row.id, frozenset(wanted) if wanted is not None else None)
        return SharedStream(key, _stock_feed(info, row.id, row.code, wanted))  # type: ignore[return-value]

    @strawberry.subscription(description="Each status change of one order: its buyer (access token), its channel's partner, or an operator.")
    async def order_status_changed(self, info: Info, order_id: strawberry.ID) -> AsyncGenerator[OrderStatusChange, None]:
        pk = decode_pk(order_id, "Order", field="orderId")
        order = await info.context.loaders.order_by_id.load(pk)
        channel = await info.context.loaders.channel_by_id.load(order.channel_id) if order else None
        if order is None or channel is None or not may_read_order(info.context.principal, channel.code, order.number):
            # The same answer for an unknown order as for someone else's.
            raise Forbidden("this order is not yours to follow", field="orderId")
        return _order_feed(info, pk, order.number, StatusValue(order.status))

    @strawberry.subscription(description=(
        "A SKU's sale on a channel: its state at once, the seconds to its start as they run down (every "
        "second in the last minute), then STARTED at the start, and ENDED or CANCELLED."
    ))
    async def sale_event(self, info: Info, channel: str, sku_id: strawberry.ID) -> AsyncGenerator[SaleEventUpdate, None]:
        row = await readable_channel(info, channel)
        pk = decode_pk(sku_id, "Sku", field="skuId")
        # A late subscriber hears the sale's state at once: its group's latest moment.
        return SharedStream(("saleEvent", row.id, pk), _sale_feed(info, row.id, row.code, pk), replays=True)  # type: ignore[return-value]

    @strawberry.subscription(
        permission_classes=ADMIN_ONLY,
        description="The shop now, at once and then on each change, at most once a second: operators only.",
    )
    async def dashboard(self, info: Info) -> AsyncGenerator[DashboardSnapshot, None]:
        return _dashboard_feed(info)


async def _stock_feed(
    info: Info, channel_id: int, channel: str, wanted: set[int] | None
) -> AsyncGenerator[StockChange, None]:
    # The process's one feed computes each change once per channel; every subscriber of
    # the channel receives the same StockChange objects.
    feed = info.context.stock_feed
    assert feed is not None, "the gateway gives every context the process's stock feed"
    async with feed.follow(channel_id, channel, wanted) as changes:
        async for change in changes:
            yield change


async def _sale_feed(info: Info, channel_id: int, channel: str, sku_id: int) -> AsyncGenerator[SaleEventUpdate, None]:
    feed = info.context.sale_feed
    assert feed is not None, "the gateway gives every context the process's sale feed"
    async with feed.follow(channel_id, channel, sku_id) as moments:
        async for moment in moments:
            yield moment


async def _order_feed(info: Info, pk: int, number: str, known: StatusValue) -> AsyncGenerator[OrderStatusChange, None]:
    # `known`: the status the subscriber last heard of (at first, the one when it subscribed).
    while True:
        try:
            async with info.context.broker.subscribe(ORDER_TOPIC.format(number=number)) as events:
                async for message in events:
                    change = orjson.loads(message)
                    previous = change.get("previousStatus")
                    known = StatusValue(change["status"])
                    yield OrderStatusChange(
                        order_id=encode_id("Order", pk), status=known,
                        previous_status=StatusValue(previous) if previous else None,
                        at=datetime.fromisoformat(change["at"]),
                    )
        except MessagesLost:
            # Changes may have gone unheard: the status now, if it is not the one last heard of.
            async with info.context.db.fresh_sessions() as session:
                now = await status_of(session, pk)
            if now is not None and now[0] != known:
                yield OrderStatusChange(order_id=encode_id("Order", pk), status=now[0], previous_status=known,
                                        at=now[1])
                known = now[0]


async def _dashboard_feed(info: Info) -> AsyncGenerator[DashboardSnapshot, None]:
    # Every subscriber of this process shares one feed: one snapshot query per change, not one each.
    feed = feed_for(info.context.db, info.context.broker, DashboardSnapshot.of)
    async with feed.subscribe() as snapshots:
        async for snapshot in snapshots:
            yield snapshot
