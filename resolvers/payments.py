"""createPayment: a buyer's front end starts paying an order through WeChat Pay or Alipay."""

from __future__ import annotations

import strawberry

from resolvers.order_access import NOT_FOUND, locked_order
from schema.context import Info
from schema.errors import UserError
from schema.payments import CreatePaymentInput, CreatePaymentPayload, Payment
from schema.relay import decode_pk
from services.payments import checkout


@strawberry.type
class PaymentMutation:
    @strawberry.mutation(description=(
        "Start paying an order through WeChat Pay or Alipay: the order's buyer (its access token), its "
        "channel's storefront or partner, or an operator. Asked again, the same payment is returned."
    ))
    async def create_payment(self, info: Info, input: CreatePaymentInput) -> CreatePaymentPayload:
        context = info.context
        pk = decode_pk(input.order_id, "Order", field="input.orderId")
        async with context.uow() as uow:
            visible = await locked_order(uow, context.principal, pk) is not None
        if not visible or context.payments is None:
            return CreatePaymentPayload(payment=None, user_errors=[NOT_FOUND])
        request = checkout.PaymentRequest(pk, input.provider, input.method, input.open_id, context.client_ip)
        outcome = await checkout.start(context.db, context.payments, request, public_url=context.settings.public_url,
                                       now=context.now, uow=context.uow)
        if outcome.payment is None:
            return CreatePaymentPayload(payment=None, user_errors=[
                UserError(field=outcome.field, message=outcome.message, code=outcome.error_code)])
        return CreatePaymentPayload(payment=Payment.from_model(outcome.payment, outcome.client_params), user_errors=[])
