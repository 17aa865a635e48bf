"""Orders: placeOrder, payOrder, cancelOrder; order and orders."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

import strawberry

from domain.access import Role, may_read_channel, may_read_order
from domain.limits import HoldLimit
from domain.idempotency import GUEST_KEY_TOO_SHORT, guest_key_too_short
from domain.orders import LineRequest
from domain.orders import OrderStatus as StatusValue
from models import Order as OrderRow
from resolvers.order_access import NOT_FOUND, locked_order
from schema.channel import ChannelScope
from schema.context import Context, Info
from schema.errors import BadUserInput, Forbidden, UserError
from schema.orders import Order, OrderStatus
from schema.permissions import HasKey
from schema.relay import PageInfo, decode_cursor, decode_pk, encode_cursor, page_info, page_size
from services.core.events import stock_event
from services.core.jobs import JOBS_TOPIC
from services.core.unit_of_work import UnitOfWork
from services.orders import lifecycle, placing, reads
from services.orders.terms import ChannelTerms, Terms
from services.payments import pay_pg, receipts


@strawberry.input
class OrderLineInput:
    sku_id: strawberry.ID
    quantity: int


@strawberry.input
class BuyerInput:
    phone: str | None = None
    email: str | None = None
    recharge_account: str | None = None
    device_id: str | None = None


@strawberry.input
class PlaceOrderInput:
    channel: str
    idempotency_key: str = strawberry.field(description="Unique per channel; partners send their external order number.")
    lines: list[OrderLineInput]
    buyer: BuyerInput
    coupon_code: str | None = None


def _place_order_input(cls: type[PlaceOrderInput], value: Mapping[str, Any], _context: object) -> PlaceOrderInput:
    """PlaceOrderInput from the input value graphql-core has already coerced and validated.

    Strawberry's general conversion walks each field's annotation on every request, about
    0.2 ms per order; in a flash sale that is a tenth of what an order may cost. Optional
    fields are read with .get: graphql-core leaves out those the client did not send.
    """
    buyer = value["buyer"]
    return cls(
        channel=value["channel"],
        idempotency_key=value["idempotencyKey"],
        lines=[OrderLineInput(sku_id=line["skuId"], quantity=line["quantity"]) for line in value["lines"]],
        buyer=BuyerInput(
            phone=buyer.get("phone"), email=buyer.get("email"),
            recharge_account=buyer.get("rechargeAccount"), device_id=buyer.get("deviceId"),
        ),
        coupon_code=value.get("couponCode"),
    )


PlaceOrderInput.__strawberry_definition__.from_input = _place_order_input  # type: ignore[attr-defined]


def place_order_input(value: Mapping[str, Any]) -> PlaceOrderInput:
    """The input from a value coerced as graphql-core coerces it (transport/compiled_mutation.py)."""
    return _place_order_input(PlaceOrderInput, value, None)


@strawberry.type
class PlaceOrderPayload:
    order: Order | None
    access_token: str | None = strawberry.field(description="Lets the buyer read and follow this one order.")
    user_errors: list[UserError]


@strawberry.type
class PayOrderPayload:
    order: Order | None
    user_errors: list[UserError]


@strawberry.type
class CancelOrderPayload:
    order: Order | None
    user_errors: list[UserError]




async def _scope(info: Info, row: OrderRow) -> ChannelScope:
    channel = await info.context.loaders.channel_by_id.load(row.channel_id)
    return ChannelScope.of(channel) if channel else ChannelScope(code=None)


async def _visible_order(info: Info, pk: int) -> tuple[OrderRow, ChannelScope] | None:
    """The order if the caller may see it; None looks the same as an unknown order."""
    info.context.read_from_primary()
    row = await info.context.loaders.order_by_id.load(pk)
    if row is None:
        return None
    scope = await _scope(info, row)
    if not may_read_order(info.context.principal, scope.code or "", row.number):
        return None
    return row, scope


async def _ordering_channel(context: Context, code: str) -> ChannelTerms:
    """The channel an order names, if it is active and the caller may read it: from the
    process's copy of the terms (services/orders/terms.py), read only when it has none."""
    terms = context.terms or Terms(ttl_seconds=0)
    channel = terms.cached_channel(code)
    if channel is None:
        async with context.db.fresh_sessions() as session:
            channel = await terms.channel(session, code)
    if channel is None or not channel.active:
        raise BadUserInput(f"unknown channel {code!r}", field="channel")
    if not may_read_channel(context.principal, channel.code, public=channel.public):
        raise Forbidden(f"channel {code!r} needs a key of that channel", field="channel")
    return channel


async def place_order(context: Context, input: PlaceOrderInput) -> PlaceOrderPayload:
    """placeOrder: the resolver's work, also called by the compiled placeOrder
    (transport/compiled_mutation.py), so both answer from the same code."""
    principal = context.principal
    channel = await _ordering_channel(context, input.channel)
    if principal.order_number is not None or (principal.role is not None and not principal.is_admin and principal.channel != channel.code):
        raise Forbidden("a key places orders on its own channel only", field="channel")
    if guest_key_too_short(principal, input.idempotency_key):
        raise BadUserInput(GUEST_KEY_TOO_SHORT, field="input.idempotencyKey")
    command = placing.PlaceOrder(
        channel=channel.code,
        idempotency_key=input.idempotency_key,
        lines=[LineRequest(decode_pk(line.sku_id, "Sku", field=f"lines.{i}.skuId"), line.quantity) for i, line in enumerate(input.lines)],
        buyer=placing.Buyer(
            phone=input.buyer.phone, email=input.buyer.email,
            recharge_account=input.buyer.recharge_account, device_id=input.buyer.device_id or context.device_id,
        ),
        coupon_code=input.coupon_code,
        client_ip=context.client_ip,
    )
    settings = context.settings
    ttl = timedelta(seconds=settings.order_ttl_seconds)
    # Holds are capped for callers from the public: anonymous, or a storefront key (it
    # ships inside an app). Partners and operators answer for their orders otherwise.
    public = principal.role is None or principal.role is Role.STOREFRONT
    async with context.uow() as uow:
        placed = await placing.place_order(
            uow, command, principal, now=context.now, ttl=ttl, risk=context.risk,
            review_ttl=timedelta(seconds=settings.review_ttl_seconds),
            public_hold=HoldLimit.of(settings.hold_limit, settings.hold_limit_per_ip) if public else None,
            terms=context.terms, gate=context.gate,
            sales=context.sales, seeds=context.seeds,
        )
        if placed.created and placed.order is not None:
            lifecycle.announce(uow, placed.order, None, context.now)
            stock_event(uow, placed.changed_skus, by_orders=True)
    if placed.order is None:
        errors = [UserError(field=r.field, message=r.message, code=r.code) for r in placed.refusals]
        return PlaceOrderPayload(order=None, access_token=None, user_errors=errors)
    token = context.authenticator.tokens.issue(placed.order.number)
    scope = ChannelScope(code=channel.code, channel_id=channel.id, currency=channel.currency)
    return PlaceOrderPayload(order=Order.from_model(placed.order, scope), access_token=token, user_errors=[])


@strawberry.type
class OrderMutation:
    @strawberry.mutation(description="Place an order; stock is reserved at once, prices come from the server.")
    async def place_order(self, info: Info, input: PlaceOrderInput) -> PlaceOrderPayload:
        return await place_order(info.context, input)

    @strawberry.mutation(permission_classes=[HasKey], description=(
        "Record a payment: operators, or the order channel's partner. A payment the order cannot take "
        "(expired, cancelled, rejected, in review, paid otherwise) is owed back: REFUND_REQUESTED, and "
        "a Refund on Order.refunds."
    ))
    async def pay_order(self, info: Info, order_id: strawberry.ID, payment_reference: str) -> PayOrderPayload:
        principal = info.context.principal
        pk = decode_pk(order_id, "Order", field="orderId")
        async with info.context.uow() as uow:
            paid = await _pay_on_driver(info.context, uow, pk, payment_reference)
            if paid is not None:
                return paid
            found = await locked_order(uow, principal, pk)
            if found is None:
                return PayOrderPayload(order=None, user_errors=[NOT_FOUND])
            row, channel = found
            if not (principal.is_admin or principal.role is Role.PARTNER):
                raise Forbidden("payments are recorded by operators and partners")
            # A payment the order cannot take is owed back (REFUND_REQUESTED, on Order.refunds).
            receipt = await receipts.receive(uow, row, payment_reference, amount_fen=row.total_fen,
                                             actor=principal.actor, now=info.context.now)
        return _payload(PayOrderPayload, receipt.outcome, ChannelScope.of(channel), "orderId")

    @strawberry.mutation(description="Cancel an unpaid order and release its stock: the buyer, the channel's partner, or an operator.")
    async def cancel_order(self, info: Info, order_id: strawberry.ID) -> CancelOrderPayload:
        principal = info.context.principal
        pk = decode_pk(order_id, "Order", field="orderId")
        async with info.context.uow() as uow:
            found = await locked_order(uow, principal, pk)
            if found is None:
                return CancelOrderPayload(order=None, user_errors=[NOT_FOUND])
            row, channel = found
            outcome = await lifecycle.cancel(uow, row, actor=principal.actor, now=info.context.now)
        return _payload(CancelOrderPayload, outcome, ChannelScope.of(channel), "orderId")


async def _pay_on_driver(context: Context, uow: UnitOfWork, pk: int, reference: str) -> PayOrderPayload | None:
    """payOrder in one statement on PostgreSQL (services/payments/pay_pg.py) when it is a
    payment that pays an unpaid order; None, having changed nothing, for the general path."""
    principal, now = context.principal, context.now
    driver = uow.driver()
    if driver is None or principal.order_number is not None or not (principal.is_admin or principal.role is Role.PARTNER):
        return None
    if not await pay_pg.handles(context.db, reference):
        return None
    paid = await pay_pg.pay(driver, pk, reference, channel=None if principal.is_admin else principal.channel or "",
                            actor=principal.actor, now=now)
    if paid is None:
        return None
    order, code, channel_id, currency = paid
    lifecycle.announce(uow, order, StatusValue.PENDING_PAYMENT, now)
    uow.publish(JOBS_TOPIC, b"")
    return PayOrderPayload(order=Order.from_model(order, ChannelScope(code=code, channel_id=channel_id, currency=currency)),
                           user_errors=[])


Payload = TypeVar("Payload", PayOrderPayload, CancelOrderPayload)


def _payload(kind: type[Payload], outcome: lifecycle.Outcome, scope: ChannelScope, field: str) -> Payload:
    order = Order.from_model(outcome.order, scope) if outcome.order is not None else None
    errors = [UserError(field=outcome.error_field or field, message=outcome.message, code=outcome.error_code)] if outcome.error_code else []
    return kind(order=order, user_errors=errors)


@strawberry.type
class OrderEdge:
    cursor: str
    node: Order


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo


@strawberry.type
class OrderQuery:
    @strawberry.field(description="One order: its buyer (access token), its channel's partner, or an operator; else null.")
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        found = await _visible_order(info, decode_pk(id, "Order", field="id"))
        return Order.from_model(*found) if found else None

    @strawberry.field(permission_classes=[HasKey], description="Orders, newest first: operators see all, a partner its own channel's.")
    async def orders(
        self,
        info: Info,
        channel: str | None = None,
        status: OrderStatus | None = None,  # type: ignore[valid-type]
        placed_from: datetime | None = None,
        placed_to: datetime | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> OrderConnection:
        principal = info.context.principal
        info.context.read_from_primary()
        if not principal.is_admin:
            if principal.role is not Role.PARTNER:
                raise Forbidden("orders are listed for operators and partners")
            if channel is not None and channel != principal.channel:
                raise Forbidden("a partner lists its own channel's orders only", field="channel")
            channel = principal.channel
        limit = page_size(first, default=20, maximum=info.context.settings.limits.max_page_size)
        for name, moment in (("placedFrom", placed_from), ("placedTo", placed_to)):
            if moment is not None and moment.tzinfo is None:
                raise BadUserInput("give a time zone, e.g. 2026-01-01T00:00:00+08:00", field=name)
        channel_row = await info.context.loaders.channel_by_code.load(channel) if channel else None
        if channel is not None and channel_row is None:
            raise BadUserInput(f"unknown channel {channel!r}", field="channel")
        query = reads.OrderFilter(
            channel_id=channel_row.id if channel_row else None,
            status=StatusValue(status.value) if status is not None else None,
            placed_from=placed_from, placed_to=placed_to,
        )
        before = decode_cursor(after, "Order") if after is not None else None
        async with info.context.db.fresh_sessions() as session:
            rows, more = await reads.order_page(session, query, before_id=before, limit=limit)
        edges = []
        for row in rows:
            info.context.loaders.order_by_id.prime(row.id, row)
            edges.append(OrderEdge(cursor=encode_cursor("Order", row.id), node=Order.from_model(row, await _scope(info, row))))
        return OrderConnection(
            edges=edges,
            page_info=page_info([edge.cursor for edge in edges], more=more, after=after),
        )
