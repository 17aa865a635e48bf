"""Prepaid balances: topUpPrepaidBalance (operators) and payOrderFromBalance (partners)."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from domain.access import Role
from domain.money import Money as MoneyValue
from domain.money import MoneyError
from resolvers.access import channel_for_operator
from resolvers.order_access import NOT_FOUND, locked_order
from schema.channel import Channel, ChannelScope
from schema.context import Info
from schema.errors import Forbidden, UserError
from schema.money import Money
from schema.orders import Order
from schema.permissions import ADMIN_ONLY, HasKey
from schema.relay import decode_pk
from services.settlement import prepaid


@strawberry.type
class TopUpPrepaidBalancePayload:
    channel: Channel | None
    balance: Money | None = strawberry.field(description="The balance after the top-up.")
    user_errors: list[UserError]


@strawberry.type
class PayOrderFromBalancePayload:
    order: Order | None
    balance: Money | None = strawberry.field(description="The channel's balance after the attempt.")
    user_errors: list[UserError]


@strawberry.type
class PrepaidMutation:
    @strawberry.mutation(
        permission_classes=ADMIN_ONLY,
        description="Credit a B2B channel's prepaid balance; the same reference again credits nothing more.",
    )
    async def top_up_prepaid_balance(
        self, info: Info, channel: str, amount: Decimal, reference: str
    ) -> TopUpPrepaidBalancePayload:
        async with info.context.uow() as uow:
            row = await channel_for_operator(uow.session, channel)
            try:
                money = MoneyValue.of(amount, row.currency)
            except MoneyError as error:
                return TopUpPrepaidBalancePayload(
                    channel=None, balance=None,
                    user_errors=[UserError(field="amount", message=str(error), code="INVALID_AMOUNT")],
                )
            done = await prepaid.top_up(
                uow, row, money, reference, actor=info.context.principal.actor, now=info.context.now
            )
        if done.error_code is not None or done.balance is None:
            field = {"NOT_PREPAID": "channel", "INVALID_INPUT": "reference"}.get(done.error_code or "", "amount")
            return TopUpPrepaidBalancePayload(
                channel=None, balance=None,
                user_errors=[UserError(field=field, message=done.message, code=done.error_code or "")],
            )
        return TopUpPrepaidBalancePayload(channel=Channel.from_model(row), balance=Money.of(done.balance), user_errors=[])

    @strawberry.mutation(
        permission_classes=[HasKey],
        description="Pay an order from its channel's prepaid balance: the channel's partner, or an operator.",
    )
    async def pay_order_from_balance(self, info: Info, order_id: strawberry.ID) -> PayOrderFromBalancePayload:
        principal = info.context.principal
        pk = decode_pk(order_id, "Order", field="orderId")
        async with info.context.uow() as uow:
            found = await locked_order(uow, principal, pk)
            if found is None:
                return PayOrderFromBalancePayload(order=None, balance=None, user_errors=[NOT_FOUND])
            row, channel = found
            if not (principal.is_admin or principal.role is Role.PARTNER):
                raise Forbidden("orders are paid from a balance by operators and the channel's partner")
            # Read now: a refused debit rolls back, which expires every row of the session.
            channel_id, scope = channel.id, ChannelScope.of(channel)
            if not prepaid.keeps_balance(channel):
                outcome = None
            else:
                outcome = await prepaid.pay_from_balance(uow, row, actor=principal.actor, now=info.context.now)
            balance = await prepaid.balance_of(uow.session, channel_id) if outcome is not None else 0
        if outcome is None:
            error = UserError(field="orderId", message="only B2B channels keep a prepaid balance", code="NOT_PREPAID")
            return PayOrderFromBalancePayload(order=Order.from_model(row, scope), balance=None, user_errors=[error])
        errors = [UserError(field="orderId", message=outcome.message, code=outcome.error_code)] if outcome.error_code else []
        order = Order.from_model(outcome.order, scope) if outcome.order is not None else None
        return PayOrderFromBalancePayload(order=order, balance=Money.fen(balance, scope.currency), user_errors=errors)
