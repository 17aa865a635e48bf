"""Memberships: subscribe, cancelSubscription, setMembershipPlan; subscription and subscriptions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import strawberry
from sqlalchemy import select

from domain.access import Role, may_read_channel, may_read_membership
from domain.idempotency import GUEST_KEY_TOO_SHORT, guest_key_too_short
from domain.limits import HoldLimit
from domain.money import Money as MoneyValue
from domain.money import MoneyError
from models import Channel as ChannelRow
from models import Membership as MembershipRow
from resolvers.access import channel_for_operator
from resolvers.orders import BuyerInput
from schema.channel import ChannelScope
from schema.context import Context, Info
from schema.errors import BadUserInput, Forbidden, UserError
from schema.memberships import Membership, MembershipPlan, MembershipState, SubscriptionPeriod
from schema.money import Money
from schema.orders import Order
from schema.permissions import ADMIN_ONLY, HasKey
from schema.relay import PageInfo, decode_cursor, decode_pk, encode_cursor, encode_id, page_info, page_size
from services.memberships import cancelling, charging, plans, reads, signup
from services.memberships.desk import Memberships
from services.orders.draft import Buyer


@strawberry.input
class SubscribeInput:
    channel: str
    sku_id: strawberry.ID
    idempotency_key: str = strawberry.field(description="Unique per channel: a retry answers with the same membership.")
    buyer: BuyerInput
    period: SubscriptionPeriod | None = None  # type: ignore[valid-type]


@strawberry.type
class SubscribePayload:
    subscription: Membership | None
    order: Order | None = strawberry.field(description="The first period's order, paid through the agreement.")
    access_token: str | None = strawberry.field(description="Lets the buyer read and cancel this membership.")
    order_access_token: str | None = strawberry.field(description="Lets the buyer read the first order.")
    user_errors: list[UserError]


@strawberry.type
class CancelSubscriptionPayload:
    subscription: Membership | None
    user_errors: list[UserError]


@strawberry.input
class SetMembershipPlanInput:
    sku_id: strawberry.ID
    period: SubscriptionPeriod  # type: ignore[valid-type]
    enabled: bool = True
    max_charge: Decimal | None = strawberry.field(default=None, description=(
        "The most one renewal may charge (the channel's price may change within it); by default the face value."
    ))


@strawberry.type
class SetMembershipPlanPayload:
    plan: MembershipPlan | None
    user_errors: list[UserError]


@strawberry.type
class MembershipEdge:
    cursor: str
    node: Membership


@strawberry.type
class MembershipConnection:
    edges: list[MembershipEdge]
    page_info: PageInfo


NOT_FOUND = UserError(field="id", message="no such subscription", code="NOT_FOUND")


def _desk(context: Context) -> Memberships:
    return context.memberships or Memberships()


async def _view(context: Context, row: MembershipRow) -> Membership:
    async with context.db.sessions() as session:
        return Membership.from_view((await reads.views(session, [row]))[0])


async def _subscribing_channel(context: Context, code: str) -> ChannelRow:
    async with context.db.sessions() as session:
        channel = await session.scalar(select(ChannelRow).where(ChannelRow.code == code))
    if channel is None or not channel.active:
        raise BadUserInput(f"unknown channel {code!r}", field="channel")
    principal = context.principal
    if not may_read_channel(principal, channel.code, public=channel.public):
        raise Forbidden(f"channel {code!r} needs a key of that channel", field="channel")
    if principal.order_number is not None or (principal.role is not None and not principal.is_admin
                                               and principal.channel != channel.code):
        raise Forbidden("a key subscribes on its own channel only", field="channel")
    return channel


@strawberry.type
class MembershipMutation:
    @strawberry.mutation(description=(
        "Subscribe to a direct top-up SKU sold by subscription: the agreement is signed with the payment "
        "provider and the first period is ordered and charged at once; each renewal is an order of its own."
    ))
    async def subscribe(self, info: Info, input: SubscribeInput) -> SubscribePayload:
        context = info.context
        context.read_from_primary()
        channel = await _subscribing_channel(context, input.channel)
        if guest_key_too_short(context.principal, input.idempotency_key):
            raise BadUserInput(GUEST_KEY_TOO_SHORT, field="input.idempotencyKey")
        desk, settings, principal = _desk(context), context.settings, context.principal
        public = principal.role is None or principal.role is Role.STOREFRONT
        command = signup.Subscribe(
            channel_id=channel.id, sku_id=decode_pk(input.sku_id, "Sku", field="input.skuId"),
            idempotency_key=input.idempotency_key, period=input.period,
            buyer=Buyer(input.buyer.phone, input.buyer.email, input.buyer.recharge_account, input.buyer.device_id),
        )
        placement = charging.Placement(
            principal=principal, risk=context.risk, client_ip=context.client_ip,
            device_id=input.buyer.device_id or context.device_id,
            public_hold=HoldLimit.of(settings.hold_limit, settings.hold_limit_per_ip) if public else None,
        )
        async with context.uow() as uow:
            done = await signup.subscribe(uow, command, desk.provider, now=desk.clock(),
                                          ttl=timedelta(seconds=settings.order_ttl_seconds), placement=placement)
        if done.membership is None:
            refusal = done.refusal
            assert refusal is not None
            return SubscribePayload(subscription=None, order=None, access_token=None, order_access_token=None,
                                    user_errors=[UserError(field=refusal.field, message=refusal.message, code=refusal.code)])
        tokens = context.authenticator.tokens
        order = Order.from_model(done.order, ChannelScope.of(channel)) if done.order is not None else None
        return SubscribePayload(
            subscription=await _view(context, done.membership), order=order,
            access_token=tokens.issue(done.membership.number),
            order_access_token=tokens.issue(done.order.number) if done.order is not None else None, user_errors=[],
        )

    @strawberry.mutation(description=(
        "Cancel a membership any time: its buyer (access token), its channel's partner, or an operator. "
        "No renewal is charged after it; the period paid for stays."
    ))
    async def cancel_subscription(self, info: Info, id: strawberry.ID) -> CancelSubscriptionPayload:
        context = info.context
        context.read_from_primary()
        pk = decode_pk(id, "Membership", field="id")
        desk = _desk(context)
        async with context.uow() as uow:
            row = await charging.locked(uow.session, pk)
            channel = await uow.session.get(ChannelRow, row.channel_id) if row else None
            if row is None or channel is None or not may_read_membership(context.principal, channel.code, row.number):
                return CancelSubscriptionPayload(subscription=None, user_errors=[NOT_FOUND])
            ended = await cancelling.cancel(uow, row, desk.provider, actor=context.principal.actor, now=desk.clock())
        errors = [] if ended else [UserError(field="id", message=f"the subscription is already {row.status.value}",
                                             code="INVALID_STATE")]
        return CancelSubscriptionPayload(subscription=await _view(context, row), user_errors=errors)

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Sell a direct top-up SKU by subscription (operators).")
    async def set_membership_plan(self, info: Info, input: SetMembershipPlanInput) -> SetMembershipPlanPayload:
        context = info.context
        sku_id = decode_pk(input.sku_id, "Sku", field="input.skuId")
        try:
            cap = MoneyValue.of(input.max_charge, "CNY") if input.max_charge is not None else None
        except MoneyError as error:
            raise BadUserInput(str(error), field="input.maxCharge") from None
        async with context.uow() as uow:
            done = await plans.set_plan(
                uow.session, sku_id, input.period, enabled=input.enabled, cap_fen=cap.minor if cap is not None else None,
                actor=context.principal.actor, now=context.now,
            )
            if isinstance(done, plans.PlanRefusal):
                await uow.rollback()
                return SetMembershipPlanPayload(plan=None, user_errors=[
                    UserError(field=done.field, message=done.message, code=done.code)])
            plan = MembershipPlan(sku_id=encode_id("Sku", done.sku_id), period=done.period, enabled=done.enabled,
                                  max_charge=Money.fen(done.cap_fen, "CNY"))
        return SetMembershipPlanPayload(plan=plan, user_errors=[])


@strawberry.type
class MembershipQuery:
    @strawberry.field(description="One membership: its buyer (access token), its channel's partner, or an operator; else null.")
    async def subscription(self, info: Info, id: strawberry.ID) -> Membership | None:
        context = info.context
        context.read_from_primary()
        pk = decode_pk(id, "Membership", field="id")
        async with context.db.sessions() as session:
            row = await session.get(MembershipRow, pk)
            channel = await session.get(ChannelRow, row.channel_id) if row else None
            if row is None or channel is None or not may_read_membership(context.principal, channel.code, row.number):
                return None
            return Membership.from_view((await reads.views(session, [row]))[0])

    @strawberry.field(permission_classes=[HasKey], description="Memberships, newest first: operators see all, a partner its own channel's.")
    async def subscriptions(
        self, info: Info, channel: str | None = None, status: MembershipState | None = None,  # type: ignore[valid-type]
        first: int | None = 20, after: str | None = None,
    ) -> MembershipConnection:
        context = info.context
        principal = context.principal
        if not principal.is_admin:
            if principal.role is not Role.PARTNER:
                raise Forbidden("subscriptions are listed for operators and partners")
            if channel is not None and channel != principal.channel:
                raise Forbidden("a partner lists its own channel's subscriptions", field="channel")
            channel = principal.channel
        size = page_size(first, default=20, maximum=100)
        before = decode_cursor(after, "Membership") if after else None
        async with context.db.sessions() as session:
            channel_id = (await channel_for_operator(session, channel)).id if channel is not None else None
            rows = await reads.page(session, channel_id=channel_id, status=status, before=before, size=size + 1)
            views = await reads.views(session, rows[:size])
        edges = [MembershipEdge(cursor=encode_cursor("Membership", view.row.id), node=Membership.from_view(view))
                 for view in views]
        return MembershipConnection(edges=edges, page_info=page_info([e.cursor for e in edges], more=len(rows) > size,
                                                                     after=after))
