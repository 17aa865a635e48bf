"""Subscribing: a plan, a signed agreement, and the first period charged as an order.

One transaction: the membership is written, the provider signs the agreement for it, the
first period is charged (services/memberships/charging.py), and the next renewal and its
reminder are queued. A first charge that fails leaves nothing but the cancelled order (and
a refused risk verdict): the buyer may try again. The same idempotency key sent again on
the channel answers with the membership it made, if the request is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from domain.catalog import SkuKind
from domain.memberships import CHARGED, SIGNED, MembershipStatus, Period
from domain.orders import HOLDS_RESERVATION, OrderInputError
from models import Membership, MembershipEvent, MembershipPlan, Order, Sku
from providers.base import ProviderError
from providers.recurring import AgreementRequest, RecurringPayments
from services.core.unit_of_work import UnitOfWork
from services.memberships import charging, schedule
from services.orders import lifecycle
from services.orders.draft import Buyer, canonical_buyer


@dataclass(frozen=True, slots=True)
class Subscribe:
    channel_id: int
    sku_id: int
    idempotency_key: str
    buyer: Buyer
    period: Period | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    field: str | None
    message: str
    code: str


@dataclass(frozen=True, slots=True)
class Subscribed:
    membership: Membership | None
    order: Order | None = None
    refusal: Refusal | None = None


def _refused(field: str | None, message: str, code: str) -> Subscribed:
    return Subscribed(None, None, Refusal(field, message, code))


async def subscribe(
    uow: UnitOfWork, command: Subscribe, provider: RecurringPayments | None, *, now: datetime, ttl: timedelta,
    placement: charging.Placement,
) -> Subscribed:
    session = uow.session
    key = command.idempotency_key.strip()
    if not 1 <= len(key) <= 100:
        return _refused("input.idempotencyKey", "an idempotency key is 1 to 100 characters", "INVALID_INPUT")
    try:
        buyer = canonical_buyer(command.buyer)
    except OrderInputError as error:
        return _refused(f"input.{error.field}", error.message, error.code)
    if not (buyer.recharge_account or "").strip():
        return _refused("input.buyer.rechargeAccount", "a subscription needs the account to credit",
                        "RECHARGE_ACCOUNT_REQUIRED")
    existing = await session.scalar(
        select(Membership).where(Membership.channel_id == command.channel_id, Membership.idempotency_key == key)
    )
    if existing is not None:
        return await _replay(uow, existing, command, buyer)
    sku = await session.get(Sku, command.sku_id)
    plan = await session.get(MembershipPlan, command.sku_id)
    if sku is None or sku.kind is not SkuKind.DIRECT_RECHARGE or plan is None or not plan.enabled:
        return _refused("input.skuId", "this SKU is not sold by subscription", "NOT_SUBSCRIBABLE")
    if command.period is not None and command.period is not plan.period:
        return _refused("input.period", f"this SKU renews every {plan.period.value}", "INVALID_PERIOD")
    if provider is None:
        return _refused(None, "subscriptions are not available: no recurring payment provider", "UNAVAILABLE")

    membership = Membership(
        number=charging.membership_number(now), channel_id=command.channel_id, sku_id=sku.id, idempotency_key=key,
        period=plan.period, status=MembershipStatus.ACTIVE, provider=provider.name, agreement_id="",
        buyer_phone=buyer.phone, buyer_email=buyer.email, recharge_account=buyer.recharge_account or "",
        started_at=now, paid_periods=0, declined=0, placed_by=placement.principal.actor[:64],
        created_at=now, updated_at=now,
    )
    try:
        agreement = await provider.sign(AgreementRequest(
            plan=sku.code, subscriber=membership.number, cap_fen=plan.cap_fen, currency=sku.currency,
            period=plan.period.value,
        ))
    except ProviderError as error:
        return _refused(None, f"the payment provider did not sign the agreement: {error}", error.code)
    membership.agreement_id = agreement.agreement_id
    session.add(membership)
    await session.flush()
    charging.record(session, membership, SIGNED, now=now, actor=placement.principal.actor, detail=provider.name)
    try:
        charged = await charging.charge_period(uow, membership, 1, provider, now=now, ttl=ttl, placement=placement)
    except ProviderError as error:
        await uow.rollback()
        return _refused(None, f"the payment provider did not answer: {error}", error.code)
    if not charged.paid:
        # Nothing of the membership stays; the order it placed stays, cancelled (on
        # PostgreSQL it was written on a connection of its own: cancelled there too).
        left = charged.order.id if charged.order is not None else None  # read before the rollback expires it
        await uow.rollback()
        if left is not None:
            await _cancel_left_order(uow, left, now)
        field = "input.skuId" if charged.code in ("OUT_OF_STOCK", "QUOTA_EXCEEDED") else None
        return Subscribed(None, None, Refusal(field, charged.reason, charged.code or "PAYMENT_DECLINED"))
    assert charged.order is not None
    membership.paid_periods, membership.last_order_id = 1, charged.order.id
    charging.record(session, membership, CHARGED, now=now, period=1, order=charged.order)
    await schedule.next_renewal(uow, membership, now)
    return Subscribed(membership, charged.order)


async def _cancel_left_order(uow: UnitOfWork, order_id: int, now: datetime) -> None:
    order = await uow.session.get(Order, order_id, with_for_update=True, populate_existing=True)
    if order is not None and order.status in HOLDS_RESERVATION:
        await lifecycle.cancel(uow, order, actor=charging.ACTOR, now=now, reason="subscription not started")


async def _replay(uow: UnitOfWork, membership: Membership, command: Subscribe, buyer: Buyer) -> Subscribed:
    same = membership.sku_id == command.sku_id and (
        membership.buyer_phone, membership.buyer_email, membership.recharge_account
    ) == (buyer.phone, buyer.email, buyer.recharge_account)
    if not same:
        return _refused("input.idempotencyKey", "this key was already used for a different subscription",
                        "IDEMPOTENCY_KEY_REUSED")
    first = await uow.session.scalar(
        select(Order).join(MembershipEvent, MembershipEvent.order_id == Order.id)
        .where(MembershipEvent.membership_id == membership.id, MembershipEvent.kind == CHARGED)
        .order_by(MembershipEvent.id).limit(1)
    )
    return Subscribed(membership, first)
