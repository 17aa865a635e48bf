"""Reconciliation with a provider: its daily statement against our payments and refunds.

Each merchant's statement for the day (China time, the providers' day) is downloaded in the
format the provider publishes (providers/statements.py), outside any transaction; then our
side of that day is read and the two compared line by line (domain/settlement.py reconcile):
a payment by our order number, a refund by our refund number. What differs is stored as a
report, like the settlement reconciliation: a payment the provider took that we never
applied (a notification lost for good), one we applied that it does not know, an amount or a
status that disagrees (a refund still PROCESSING here that it paid).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta, timezone

from sqlalchemy import select

from domain.money import Money
from domain.settlement import Discrepancy, Record, reconcile
from models import Order, Payment, PaymentAccount, ProviderReconciliation, ProviderReconciliationItem, Refund
from providers.base import PaymentProvider, Provider, StatementLine
from services.core.unit_of_work import UnitOfWork
from services.payments import refunds
from services.payments.accounts import PaymentAccounts
from services.payments.provider_notices import OWED_BACK, PAID, refund_number

CHINA = timezone(timedelta(hours=8))
_REFUND_STATUS = {refunds.SUCCEEDED: "REFUNDED", refunds.PROCESSING: "PROCESSING"}


class NotConfigured(Exception):
    pass


async def download(accounts: PaymentAccounts, provider: Provider, day: date) -> tuple[set[str], list[StatementLine]]:
    """The merchants' ids and their statements' lines (one download per merchant)."""
    merchants: dict[str, PaymentProvider] = {}
    for adapter in await accounts.of_provider(provider):
        merchants.setdefault(adapter.account.merchant_id, adapter)
    if not merchants:
        raise NotConfigured(f"{provider.value} is not configured")
    lines: list[StatementLine] = []
    for adapter in merchants.values():
        lines += await adapter.statement(day)
    return set(merchants), lines


async def file_report(uow: UnitOfWork, provider: Provider, day: date, merchants: set[str], lines: list[StatementLine],
                      *, actor: str, now: datetime) -> tuple[ProviderReconciliation, list[ProviderReconciliationItem]]:
    session = uow.session
    start = datetime.combine(day, time(), CHINA).astimezone(UTC)
    end = start + timedelta(days=1)
    ours: list[Record] = []
    paid = await session.execute(
        select(Order.number, Payment.amount_fen, Payment.currency)
        .join(Order, Order.id == Payment.order_id).join(PaymentAccount, PaymentAccount.id == Payment.account_id)
        .where(Payment.provider == provider.value, Payment.status.in_((PAID, OWED_BACK)),
               Payment.paid_at >= start, Payment.paid_at < end, PaymentAccount.merchant_id.in_(merchants)))
    ours += [Record(number, Money(fen, currency), "PAID") for number, fen, currency in paid]
    returned = await session.execute(
        select(Order.number, Refund.id, Refund.amount_fen, Refund.currency, Refund.status)
        .join(Order, Order.id == Refund.order_id)
        .join(Payment, (Payment.order_id == Refund.order_id) & (Payment.transaction_id == Refund.reference))
        .join(PaymentAccount, PaymentAccount.id == Payment.account_id)
        .where(Payment.provider == provider.value, Refund.status.in_(tuple(_REFUND_STATUS)),
               Refund.created_at >= start, Refund.created_at < end, PaymentAccount.merchant_id.in_(merchants)))
    ours += [Record(refund_number(number, refund_id), Money(fen, currency), _REFUND_STATUS[status])
             for number, refund_id, fen, currency, status in returned]
    theirs = [Record(line.key, Money(line.amount_fen, "CNY"), line.status) for line in lines]
    findings = reconcile(ours, theirs)
    counts = Counter(f.kind for f in findings)
    different = {f.order_number for f in findings}
    report = ProviderReconciliation(
        provider=provider.value, day=day.isoformat(), actor=actor[:120], at=now, records=len(theirs),
        matched=sum(1 for r in theirs if r.order_number not in different),
        missing_on_their_side=counts[Discrepancy.MISSING_ON_THEIR_SIDE],
        missing_on_our_side=counts[Discrepancy.MISSING_ON_OUR_SIDE],
        amount_mismatches=counts[Discrepancy.AMOUNT_MISMATCH], status_mismatches=counts[Discrepancy.STATUS_MISMATCH],
    )
    session.add(report)
    await session.flush()
    items = [
        ProviderReconciliationItem(
            reconciliation_id=report.id, kind=f.kind.value, reference=f.order_number[:64],
            our_amount_fen=f.ours.amount.minor if f.ours else None,
            their_amount_fen=f.theirs.amount.minor if f.theirs else None,
            our_status=f.ours.status if f.ours else None, their_status=f.theirs.status if f.theirs else None,
        )
        for f in findings
    ]
    session.add_all(items)
    await session.flush()
    return report, items
