"""Starting a payment through a provider: `createPayment`.

The order is read (and checked: unpaid, in yuan) in one short transaction; the provider is
called outside any transaction, since it may take seconds; the payment is then written in
another. One payment per order and provider: the provider's out_trade_no is the order's
number, so asking again returns the payment started before (for JSAPI signed afresh), and a
payment started one way cannot be started another way through the same provider.

Asked again for a payment still STARTED, the provider is queried first: a buyer back from
paying whose notification has not arrived (or never will: the provider's retries ran out)
finds the order paid at once, applied exactly as the notification would have been.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from domain.orders import OrderStatus
from models import Channel, Order, Payment
from providers.base import METHODS, NEEDS_PAYER, Checkout, Method, PaymentNotice, Provider, ProviderError, TradeState
from services.core.database import Database
from services.core.unit_of_work import UnitOfWork
from services.payments import provider_notices
from services.payments.accounts import PaymentAccounts
from services.payments.provider_notices import STARTED

NOTIFY_PATHS = {Provider.WECHAT_PAY: "/webhooks/wechatpay", Provider.ALIPAY: "/webhooks/alipay"}


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    order_id: int
    provider: Provider
    method: Method
    payer: str | None
    client_ip: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    payment: Payment | None = None
    client_params: dict[str, Any] | None = None
    error_code: str = ""
    message: str = ""
    field: str = "input"


def _refused(code: str, message: str, field: str = "input") -> Outcome:
    return Outcome(error_code=code, message=message, field=field)


async def start(db: Database, accounts: PaymentAccounts, request: PaymentRequest, *, public_url: str | None,
                now: datetime, uow: Callable[[], UnitOfWork]) -> Outcome:
    if request.method not in METHODS[request.provider]:
        return _refused("METHOD_UNSUPPORTED", f"{request.provider.value} does not take {request.method.value}",
                        "input.method")
    payer = (request.payer or "").strip()
    if request.method in NEEDS_PAYER and not 1 <= len(payer) <= 128:
        return _refused("PAYER_REQUIRED", "a mini-program or JSAPI payment needs the buyer's openId", "input.openId")
    async with db.sessions() as session:
        order = await session.get(Order, request.order_id)
        channel = await session.get(Channel, order.channel_id) if order is not None else None
        earlier = await session.scalar(select(Payment).where(
            Payment.order_id == request.order_id, Payment.provider == request.provider.value))
    if order is None or channel is None:
        return _refused("NOT_FOUND", "no such order", "input.orderId")
    if order.status is not OrderStatus.PENDING_PAYMENT:
        return _refused("INVALID_STATE", f"the order is {order.status.value}, not waiting for payment")
    if order.currency != "CNY":
        return _refused("CURRENCY_UNSUPPORTED", f"{request.provider.value} takes CNY, the order is in {order.currency}")
    adapter = await accounts.for_channel(request.provider, channel.code)
    if adapter is None or not public_url:
        return _refused("PROVIDER_UNAVAILABLE", f"{request.provider.value} is not configured for channel {channel.code}",
                        "input.provider")
    checkout = Checkout(
        order.number, order.total_fen, order.currency, f"Quanyi order {order.number}", request.method,
        public_url.rstrip("/") + NOTIFY_PATHS[request.provider], payer or None, request.client_ip, order.expires_at,
    )
    if earlier is not None:
        if earlier.method != request.method.value:
            return _refused("PAYMENT_STARTED", f"this order's payment was started as {earlier.method}", "input.method")
        paid = await _paid_meanwhile(adapter, earlier, order.number, uow, now) \
            if earlier.status == STARTED and accounts.queries.admit(earlier.id) else None
        if paid is not None:
            return Outcome(paid)
        return Outcome(earlier, adapter.client_params(checkout, earlier.handle or ""))
    try:
        started = await adapter.create(checkout)
    except ProviderError as error:
        return _refused("PROVIDER_ERROR", str(error), "input.provider")
    async with db.sessions() as session, session.begin():
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        await session.execute(insert(Payment).values(
            order_id=order.id, account_id=adapter.account.id, provider=request.provider.value,
            method=request.method.value, status=STARTED, amount_fen=order.total_fen, currency=order.currency,
            handle=started.handle, created_at=now,
        ).on_conflict_do_nothing(index_elements=[Payment.order_id, Payment.provider]))
        payment = await session.scalar(select(Payment).where(
            Payment.order_id == order.id, Payment.provider == request.provider.value))
    assert payment is not None
    if payment.method != request.method.value or payment.handle != started.handle:
        # A concurrent request for the same order wrote first: its payment is the one.
        return Outcome(payment, adapter.client_params(checkout, payment.handle or ""))
    return Outcome(payment, started.client_params)


async def _paid_meanwhile(adapter: Any, payment: Payment, order_number: str, uow: Callable[[], UnitOfWork],
                          now: datetime) -> Payment | None:
    """The payment as it is once the provider's answer is applied, if it says it was paid."""
    try:
        notice: PaymentNotice | None = await adapter.query(order_number)
    except ProviderError:
        return None  # no answer now: the notification will still come
    if notice is None or notice.state is not TradeState.PAID:
        return None
    async with uow() as unit:
        await provider_notices.apply_payment(unit, notice, now=now)
        return await unit.session.get(Payment, payment.id, populate_existing=True)
