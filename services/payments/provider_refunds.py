"""Refunds paid back through the provider that took the payment.

The refund job (services/fulfilment/followups.py) asks here with the refund and the payment
it returns. A payment that came through a provider (its transaction id is the refund's
reference) is refunded through that provider's refund API, for the refund's amount out of
the payment's: a whole order, or the lines that could not be delivered. What the provider
answers moves the refund on (PROCESSING, or SUCCEEDED at once); its refund notification
(services/payments/provider_notices.py) closes the loop; while it is PROCESSING the job
asks the provider again now and then (`check`), for a notification that never arrives. Any other payment (payOrder, the
generic webhook) is left REQUESTED for an operator, as before.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from models import Payment, Refund
from providers.base import PaymentProvider, Provider, ProviderError, RefundOrder, RefundState
from services.core.database import Database
from services.payments import refunds
from services.payments.accounts import PaymentAccounts
from services.payments.checkout import NOTIFY_PATHS
from services.payments.provider_notices import refund_number

log = logging.getLogger("quanyi.refunds")

_STATUS = {RefundState.SUCCEEDED: refunds.SUCCEEDED, RefundState.PROCESSING: refunds.PROCESSING,
           RefundState.FAILED: refunds.FAILED}


class ProviderRefunds:
    def __init__(self, db: Database, accounts: PaymentAccounts, public_url: str | None) -> None:
        self._db, self._accounts, self._public_url = db, accounts, (public_url or "").rstrip("/")

    async def _payment(self, refund: Refund, payment_reference: str | None) -> tuple[Payment, PaymentProvider] | None:
        if not payment_reference:
            return None
        async with self._db.fresh_sessions() as session:
            payment = await session.scalar(select(Payment).where(
                Payment.order_id == refund.order_id, Payment.transaction_id == payment_reference))
        adapter = await self._accounts.by_id(payment.account_id) if payment is not None else None
        return (payment, adapter) if payment is not None and adapter is not None else None

    async def check(self, refund: Refund, order_number: str, payment_reference: str | None) -> str | None:
        """Asked while the refund is PROCESSING: its notification may never come."""
        found = await self._payment(refund, payment_reference)
        if found is None:
            return None
        state = await found[1].refund_state(order_number, refund_number(order_number, refund.id))
        return _STATUS[state] if state is not None else None

    async def request(self, refund: Refund, order_number: str, payment_reference: str | None) -> str | None:
        found = await self._payment(refund, payment_reference)
        if found is None:
            return await refunds.RecordedRefunds().request(refund, order_number, payment_reference)
        payment, adapter = found
        order = RefundOrder(
            refund_number(order_number, refund.id), order_number, payment.transaction_id or "", refund.amount_fen,
            payment.amount_fen, refund.currency, refund.reason,
            self._public_url + NOTIFY_PATHS[Provider(payment.provider)],
        )
        try:
            state = await adapter.refund(order)
        except ProviderError as error:
            if error.retryable:
                raise  # the job runs again later
            log.warning("refund %s of order %s refused by %s: %s", refund.id, order_number, payment.provider, error)
            return refunds.FAILED
        log.info("refund %s of order %s sent to %s: %s", refund.id, order_number, payment.provider, state.value)
        return _STATUS[state]
