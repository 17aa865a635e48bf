"""resendDelivery: send a delivered line's codes again; never sells another code."""

from __future__ import annotations

import uuid

import strawberry

from domain.access import may_read_order
from models import Channel as ChannelRow
from models import Order as OrderRow
from models import OrderLine as LineRow
from schema.channel import ChannelScope
from schema.context import Info
from schema.errors import UserError
from schema.orders import OrderLine
from schema.relay import decode_pk
from services.core import jobs
from services.fulfilment import delivery, resends

LINE_NOT_FOUND = UserError(field="orderLineId", message="no such order line", code="NOT_FOUND")


@strawberry.type
class ResendDeliveryPayload:
    order_line: OrderLine | None
    user_errors: list[UserError]


@strawberry.type
class FulfilmentMutation:
    @strawberry.mutation(description="Send a delivered line's codes again, on every channel that reaches the buyer: "
                         "the buyer, the channel's partner, or an operator.")
    async def resend_delivery(self, info: Info, order_line_id: strawberry.ID) -> ResendDeliveryPayload:
        pk = decode_pk(order_line_id, "OrderLine", field="orderLineId")
        senders = info.context.senders
        async with info.context.uow() as uow:
            line = await uow.session.get(LineRow, pk)
            order = await uow.session.get(OrderRow, line.order_id) if line else None
            channel = await uow.session.get(ChannelRow, order.channel_id) if order else None
            if line is None or order is None or channel is None or not may_read_order(
                info.context.principal, channel.code, order.number
            ):
                return ResendDeliveryPayload(order_line=None, user_errors=[LINE_NOT_FOUND])
            if not await delivery.sold_codes_count(uow.session, line.id):
                return ResendDeliveryPayload(order_line=None, user_errors=[UserError(
                    field="orderLineId", message="the line has no delivered codes to send", code="NOT_DELIVERED")])
            if not info.context.principal.is_admin:
                # Operators resend on a buyer's behalf without limit; buyers and partners are limited.
                next_at = await resends.take_resend(uow.session, line.id, info.context.now)
                if next_at is not None:
                    return ResendDeliveryPayload(order_line=None, user_errors=[UserError(
                        field="orderLineId", code="RESEND_LIMIT",
                        message=f"a line's codes are sent again at most {resends.RESENDS_PER_WINDOW} times an hour; "
                                f"try again after {next_at.isoformat(timespec='seconds')}",
                    )])
            await delivery.enqueue_delivery(uow.session, order, line.id, senders, now=info.context.now,
                                            round=f"resend-{uuid.uuid4().hex}")
            uow.publish(jobs.JOBS_TOPIC, b"")
        return ResendDeliveryPayload(order_line=OrderLine.from_model(line, order, ChannelScope.of(channel)), user_errors=[])
