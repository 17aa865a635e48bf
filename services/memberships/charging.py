"""Charging one period of a membership: an ordinary order, paid through the agreement.

Both the first period (services/memberships/signup.py) and each renewal
(services/memberships/renewals.py) come here with the membership locked (`locked`) in the
caller's transaction:

1. The period's order is placed as any order is (priced at the channel's price of the
   moment, stock and quotas reserved), under the key `<membership>-<period>-<attempt>`:
   run again, the same attempt finds the same order, and a retry after a declined charge
   is an attempt, and an order, of its own.
2. The order is charged through the agreement under that same key, so a charge asked twice
   (a job run again after its worker died) is one charge at the provider.
3. A charge that went through pays the order the way every payment does
   (services/payments/receipts.py): fulfilment is queued, the ledger follows delivery. A
   declined charge cancels the order, which gives its stock back.

The charge is made while the membership's row is locked, so a cancel, which updates that
row, either committed before (the renewal then finds the membership ended and charges
nothing) or waits until the charge is recorded: nothing is charged after a cancel
committed. Two runs of one period queue on the same lock, and the second finds it paid.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.access import Principal, Role
from domain.limits import HoldLimit
from domain.orders import LineRequest, OrderStatus
from models import Channel, Membership, MembershipEvent, Order
from providers.base import ProviderError
from providers.recurring import AgreementRefused, Charge, ChargeState, RecurringPayments
from services.core.events import stock_event
from services.core.unit_of_work import UnitOfWork
from services.orders import lifecycle, placing
from services.payments import receipts
from services.risk.check import RiskCheck

ACTOR = "memberships"
# Renewals are placed by the platform on the buyer's standing agreement.
RENEWER = Principal(role=Role.ADMIN, key_prefix=ACTOR)


@dataclass(frozen=True, slots=True)
class Charged:
    """How charging a period ended: `order` (None when none could be placed), whether it
    was paid, and why not."""

    order: Order | None
    paid: bool
    code: str = ""  # PAYMENT_DECLINED, AGREEMENT_INVALID, OUT_OF_STOCK, ...
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Placement:
    """How the period's order is placed: by whom, screened how (the first period is the
    buyer's own order; renewals are the platform's, on the agreement)."""

    principal: Principal = RENEWER
    risk: RiskCheck | None = None
    public_hold: HoldLimit | None = None
    client_ip: str | None = None
    device_id: str | None = None


def membership_number(now: datetime) -> str:
    return f"SB{now:%y%m%d}{secrets.randbelow(10**10):010d}"


async def locked(session: AsyncSession, membership_id: int) -> Membership | None:
    """The membership, locked until the transaction ends. A no-op UPDATE first: on SQLite it
    takes the writer lock now (a plain read would not), on PostgreSQL it locks the row."""
    await session.execute(
        update(Membership).where(Membership.id == membership_id).values(id=Membership.id)
        .execution_options(synchronize_session=False)
    )
    return await session.get(Membership, membership_id, with_for_update=True, populate_existing=True)


def attempt_key(membership: Membership, period: int) -> str:
    return f"{membership.number}-{period}-{membership.declined + 1}"


async def charge_period(
    uow: UnitOfWork, membership: Membership, period: int, provider: RecurringPayments, *,
    now: datetime, ttl: timedelta, placement: Placement = Placement(),
) -> Charged:
    session = uow.session
    key = attempt_key(membership, period)
    channel = await session.scalar(select(Channel.code).where(Channel.id == membership.channel_id)) or ""
    command = placing.PlaceOrder(
        channel=channel, idempotency_key=key, lines=[LineRequest(membership.sku_id, 1)],
        buyer=placing.Buyer(membership.buyer_phone, membership.buyer_email, membership.recharge_account,
                            placement.device_id),
        client_ip=placement.client_ip,
    )
    placed = await placing.place_order(
        uow, command, placement.principal, now=now, ttl=ttl, risk=placement.risk, public_hold=placement.public_hold,
    )
    if placed.created and placed.order is not None:
        lifecycle.announce(uow, placed.order, None, now)
        stock_event(uow, placed.changed_skus, by_orders=True)
    if placed.order is None:
        refusal = placed.refusals[0]
        return Charged(None, False, refusal.code, refusal.message)
    # Written on PostgreSQL's driver, or in this session: read (and locked) here either way.
    order = await session.get(Order, placed.order.id, with_for_update=True, populate_existing=True)
    assert order is not None
    if order.paid_at is not None:
        return Charged(order, True)  # paid by an earlier run of this attempt
    if order.status is not OrderStatus.PENDING_PAYMENT:
        if order.status is OrderStatus.REVIEW:
            await lifecycle.reject(uow, order, actor=ACTOR, now=now, reason="a subscription is not held for review")
            return Charged(order, False, "RISK_REVIEW", "this order cannot be accepted as a subscription")
        return Charged(order, False, "INVALID_STATE", f"the order is {order.status.value}")
    try:
        result = await provider.charge(Charge(
            agreement_id=membership.agreement_id, subscriber=membership.number, key=key,
            amount_fen=order.total_fen, currency=order.currency, description=f"membership {membership.number}",
        ))
    except AgreementRefused as error:
        await lifecycle.cancel(uow, order, actor=ACTOR, now=now, reason="the payment agreement was refused")
        return Charged(order, False, error.code, str(error))
    except ProviderError:
        raise  # no answer to trust: the caller tries again, with the same key
    if result.state is not ChargeState.SUCCEEDED:
        await lifecycle.cancel(uow, order, actor=ACTOR, now=now, reason=f"charge declined: {result.reason}")
        return Charged(order, False, "PAYMENT_DECLINED", result.reason or "the charge was declined")
    receipt = await receipts.receive(uow, order, result.transaction_id, amount_fen=result.amount_fen, actor=ACTOR,
                                     now=now)
    if receipt.owed_back:
        return Charged(order, False, receipt.outcome.error_code or "", receipt.outcome.message)
    return Charged(order, True)


def record(session: AsyncSession, membership: Membership, kind: str, *, now: datetime, actor: str = ACTOR,
           period: int | None = None, order: Order | None = None, detail: str = "") -> None:
    session.add(MembershipEvent(
        membership_id=membership.id, kind=kind, period=period, order_id=order.id if order else None,
        amount_fen=order.total_fen if order else None, detail=detail[:200], actor=actor[:64], at=now,
    ))
