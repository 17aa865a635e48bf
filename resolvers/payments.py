"""createPayment: a buyer's front end starts paying an order through WeChat Pay or Alipay;
reconcilePayments: an operator compares a provider's daily statement with our records."""

from __future__ import annotations

from datetime import date

import strawberry

from resolvers.order_access import NOT_FOUND, locked_order
from schema.context import Info
from schema.errors import Forbidden, UserError
from schema.payments import (
    CreatePaymentInput,
    CreatePaymentPayload,
    Payment,
    PaymentProvider,
    PaymentReconciliation,
    ReconcilePaymentsPayload,
)
from schema.relay import decode_pk
from providers.base import ProviderError
from services.payments import checkout, provider_statements


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

    @strawberry.mutation(description=(
        "Operators: download a provider's statement of a day (China time) and compare it with our payments and "
        "refunds of that day; the differences are stored and returned."
    ))
    async def reconcile_payments(self, info: Info, provider: PaymentProvider,  # type: ignore[valid-type]
                                 date: date) -> ReconcilePaymentsPayload:
        context = info.context
        if not context.principal.is_admin:
            raise Forbidden("payment reconciliation is for operators")
        if context.payments is None:
            return _unreconciled("PROVIDER_UNAVAILABLE", "no payment providers here")
        try:
            merchants, lines = await provider_statements.download(context.payments, provider, date)
        except provider_statements.NotConfigured as error:
            return _unreconciled("PROVIDER_UNAVAILABLE", str(error))
        except ProviderError as error:
            return _unreconciled("PROVIDER_ERROR", str(error))
        async with context.uow() as uow:
            report, items = await provider_statements.file_report(
                uow, provider, date, merchants, lines, actor=context.principal.actor, now=context.now)
        return ReconcilePaymentsPayload(report=PaymentReconciliation.from_model(report, items), user_errors=[])


def _unreconciled(code: str, message: str) -> ReconcilePaymentsPayload:
    return ReconcilePaymentsPayload(report=None, user_errors=[UserError(field="provider", message=message, code=code)])
