"""Placing an order: idempotent, priced on the server, stock reserved in the same transaction."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.access import Principal
from domain.catalog import SkuKind
from domain.money import Money
from domain.orders import LineRequest, OrderInputError, OrderStatus, check_lines
from domain.risk import Decision, Facts, Verdict
from models import BundleItem, Channel, Order, OrderLine, Product, Sku
from services import quotas
from services.order_events import record_transition
from services.pricing import pricing_for
from services.reservation import OutOfStock, Want, reserve
from services.risk import VERDICTS_TOPIC, RiskCheck, record_verdict
from services.unit_of_work import UnitOfWork

_PHONE = re.compile(r"\+?[0-9]{6,20}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}")


@dataclass(frozen=True, slots=True)
class Buyer:
    phone: str | None = None
    email: str | None = None
    recharge_account: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    channel: str
    idempotency_key: str
    lines: list[LineRequest]
    buyer: Buyer
    coupon_code: str | None = None
    client_ip: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    field: str | None
    message: str
    code: str


@dataclass
class Placed:
    order: Order | None
    created: bool = False
    refusals: list[Refusal] = field(default_factory=list)
    changed_skus: list[int] = field(default_factory=list)


def _order_number(now: datetime) -> str:
    return f"QY{now:%y%m%d}{secrets.randbelow(10**10):010d}"


def _check_buyer(buyer: Buyer, needs_account: bool) -> None:
    if buyer.phone is not None and not _PHONE.fullmatch(buyer.phone):
        raise OrderInputError("buyer.phone", "a phone number is digits, optionally with a leading +")
    if buyer.email is not None and not _EMAIL.fullmatch(buyer.email):
        raise OrderInputError("buyer.email", "not an email address")
    if buyer.phone is None and buyer.email is None:
        raise OrderInputError("buyer", "give a phone number or an email address for delivery", "CONTACT_REQUIRED")
    if needs_account and not (buyer.recharge_account or "").strip():
        raise OrderInputError("buyer.rechargeAccount", "a top-up needs the account to credit", "RECHARGE_ACCOUNT_REQUIRED")
    for name, value in (("rechargeAccount", buyer.recharge_account), ("deviceId", buyer.device_id)):
        if value is not None and len(value) > 128:
            raise OrderInputError(f"buyer.{name}", "at most 128 characters")


RISK_REJECTED = Refusal(None, "this order cannot be accepted; contact the shop if you think this is a mistake", "RISK_REJECTED")


@dataclass(frozen=True, slots=True)
class _Draft:
    """What the reads before the write transaction found: the order as it would be placed."""

    channel_id: int
    currency: str
    key: str
    lines: list[LineRequest]
    position: dict[int, int]
    skus: dict[int, Sku]
    units: list[Money]
    total: Money
    verdict: Verdict
    facts: Facts  # completed by the risk check (the account's age)


async def place_order(
    uow: UnitOfWork, command: PlaceOrder, principal: Principal, *, now: datetime, ttl: timedelta,
    risk: RiskCheck | None = None, review_ttl: timedelta | None = None,
) -> Placed:
    """Place an order; the risk check scores the attempt before any stock is reserved.

    Everything that only reads (channel, SKUs, prices, the risk check with its counters) runs
    before the order's write transaction begins, in a session of its own: on SQLite no other
    order waits behind a Redis round trip or the risk check's reads for the writer lock.

    REJECT: no order, nothing reserved, the verdict stored as the record of the attempt.
    REVIEW: the order holds its stock in REVIEW until an operator decides (or review_ttl ends).
    """
    async with uow.fresh_reads() as reads:
        drafted = await _draft(reads, command, now, risk)
    if isinstance(drafted, Placed):
        return drafted
    if drafted is None:  # the key is taken: the write side answers the retry
        return await _replay_key(uow, command)
    return await _write(uow, drafted, command, principal, now=now, ttl=ttl, review_ttl=review_ttl)


async def _draft(
    session: AsyncSession, command: PlaceOrder, now: datetime, risk: RiskCheck | None
) -> _Draft | Placed | None:
    """The reads, checks and risk verdict of an attempt; None when an order already holds its key."""
    key = command.idempotency_key.strip()
    if not 1 <= len(key) <= 128:
        return _refused("idempotencyKey", "1 to 128 characters", "INVALID_INPUT")
    channel = await session.scalar(select(Channel).where(Channel.code == command.channel, Channel.active.is_(True)))
    if channel is None:
        return _refused("channel", f"unknown channel {command.channel!r}", "UNKNOWN_CHANNEL")
    channel_id, currency, channel_code = channel.id, channel.currency, channel.code

    try:
        lines = check_lines(command.lines)
    except OrderInputError as error:
        return _refused(error.field, error.message, error.code)
    # Refusals name the line as the buyer sent it, before lines of one SKU were merged.
    position: dict[int, int] = {}
    for index, line in enumerate(command.lines):
        position.setdefault(line.sku_id, index)

    if await session.scalar(select(Order.id).where(Order.channel_id == channel_id, Order.idempotency_key == key)):
        return None

    try:
        skus = await _skus_on_sale(session, lines, currency, position)
        _check_buyer(command.buyer, await _needs_account(session, list(skus.values())))
    except OrderInputError as error:
        return _refused(error.field, error.message, error.code)

    prices = await pricing_for(session, [(channel_id, line.sku_id) for line in lines], now, skus=skus)
    units = [prices[(channel_id, line.sku_id)].at(now, line.quantity).unit for line in lines]
    total = sum((unit * line.quantity for unit, line in zip(units, lines, strict=True)), Money(0, currency))
    facts = _facts(command, channel_code, lines, total, now)
    verdict = Verdict(Decision.PASS, 0)
    if risk is not None:
        verdict, facts = await risk.screen(session, facts)
    return _Draft(channel_id, currency, key, lines, position, skus, units, total, verdict, facts)


async def _replay_key(uow: UnitOfWork, command: PlaceOrder) -> Placed:
    channel_id = await uow.session.scalar(select(Channel.id).where(Channel.code == command.channel))
    existing = await _existing(uow, channel_id or 0, command.idempotency_key.strip())
    if existing is None:  # rolled back since: as a concurrent duplicate that lost
        return _refused("idempotencyKey", "an order with this key is being placed; try again", "CONFLICT")
    return await _replay(uow, existing, command, check_lines(command.lines))


async def _write(
    uow: UnitOfWork, draft: _Draft, command: PlaceOrder, principal: Principal, *,
    now: datetime, ttl: timedelta, review_ttl: timedelta | None,
) -> Placed:
    """The order's write transaction: the verdict, the order, its quotas and its stock."""
    session = uow.session
    channel_id, currency, key, lines, position, skus = (
        draft.channel_id, draft.currency, draft.key, draft.lines, draft.position, draft.skus
    )
    units, total, verdict, facts = draft.units, draft.total, draft.verdict, draft.facts
    if verdict.decision is Decision.REJECT:
        record_verdict(session, verdict, facts, channel_id=channel_id, idempotency_key=key, order_id=None)
        uow.publish(VERDICTS_TOPIC, b"REJECT")  # no order event follows: the dashboard hears this
        return Placed(None, refusals=[RISK_REJECTED])

    order = Order(
        number=_order_number(now), channel_id=channel_id, idempotency_key=key,
        status=OrderStatus.PENDING_RISK, currency=currency, total_fen=total.minor,
        buyer_phone=command.buyer.phone, buyer_email=command.buyer.email,
        recharge_account=command.buyer.recharge_account, device_id=command.buyer.device_id,
        coupon_code=command.coupon_code, client_ip=command.client_ip, placed_by=principal.actor,
        created_at=now, updated_at=now,
    )
    session.add(order)
    try:
        # The unique (channel, key) index decides between concurrent duplicates, here,
        # before any stock is touched: the loser waits for the winner's commit, then fails.
        await session.flush()
    except IntegrityError:
        await uow.rollback()
        winner = await _existing(uow, channel_id, key)
        if winner is None:
            return _refused("idempotencyKey", "an order with this key is being placed; try again", "CONFLICT")
        return await _replay(uow, winner, command, lines)
    record_transition(session, order, None, OrderStatus.PENDING_RISK, principal.actor, "placed", now)

    rows = [OrderLine(order_id=order.id, sku_id=line.sku_id, quantity=line.quantity, unit_price_fen=unit.minor)
            for line, unit in zip(lines, units, strict=True)]
    session.add_all(rows)
    await session.flush()
    # Quotas, then stock, each in SKU order (see reserve()): concurrent orders naming the
    # same SKUs queue on their rows in one order instead of deadlocking.
    by_sku = sorted(zip(lines, rows, strict=True), key=lambda pair: pair[0].sku_id)
    for line, _ in by_sku:
        if not await quotas.consume(session, channel_id, line.sku_id, line.quantity):
            await uow.rollback()
            return _refused(f"lines.{position[line.sku_id]}.quantity", "the channel's quota for this SKU is used up", "QUOTA_EXCEEDED")
    try:
        reserved = await reserve(session, [Want(row.id, skus[line.sku_id], line.quantity) for line, row in by_sku], now)
    except OutOfStock as error:
        sku_id = next(line.sku_id for line, row in by_sku if row.id == error.line_id)
        await uow.rollback()
        return _refused(f"lines.{position[sku_id]}.quantity", "not enough stock for this quantity", "OUT_OF_STOCK")
    for row in rows:
        row.presale_quantity = reserved.presale.get(row.id, 0)

    record_verdict(session, verdict, facts, channel_id=channel_id, idempotency_key=key, order_id=order.id)
    if verdict.decision is Decision.REVIEW:
        order.status = OrderStatus.REVIEW
        order.expires_at = now + (review_ttl or ttl)
        rules = ", ".join(reason.rule for reason in verdict.reasons)
        record_transition(session, order, OrderStatus.PENDING_RISK, OrderStatus.REVIEW, "system", f"held for review: {rules}", now)
    else:
        order.status = OrderStatus.PENDING_PAYMENT
        order.expires_at = now + ttl
        record_transition(session, order, OrderStatus.PENDING_RISK, OrderStatus.PENDING_PAYMENT, "system", "no risk rules matched", now)
    await session.flush()
    changed = sorted(reserved.sku_ids | {line.sku_id for line in lines})
    return Placed(order, created=True, changed_skus=changed)


def _facts(command: PlaceOrder, channel: str, lines: list[LineRequest], total: Money, now: datetime) -> Facts:
    buyer = command.buyer
    return Facts(
        channel=channel, at=now, amount=total, quantities={line.sku_id: line.quantity for line in lines},
        client_ip=command.client_ip, device_id=buyer.device_id, phone=buyer.phone, email=buyer.email,
        account=buyer.recharge_account or buyer.email, coupon=command.coupon_code,
    )


def _refused(field: str | None, message: str, code: str) -> Placed:
    return Placed(None, refusals=[Refusal(field, message, code)])


async def _existing(uow: UnitOfWork, channel_id: int, key: str) -> Order | None:
    return await uow.session.scalar(
        select(Order).where(Order.channel_id == channel_id, Order.idempotency_key == key)
    )


async def _replay(uow: UnitOfWork, order: Order, command: PlaceOrder, lines: list[LineRequest]) -> Placed:
    """The order a key already placed, if this is a retry of the same request.

    A key sent again with other lines or another buyer is not a retry: answering it with
    the first order would tell a partner its new order was placed, and would hand a
    guest who guessed the key another buyer's order and its access token.
    """
    held = {
        sku_id: quantity
        for sku_id, quantity in await uow.session.execute(
            select(OrderLine.sku_id, OrderLine.quantity).where(OrderLine.order_id == order.id)
        )
    }
    buyer = command.buyer
    same = held == {line.sku_id: line.quantity for line in lines} and (
        order.buyer_phone, order.buyer_email, order.recharge_account, order.coupon_code
    ) == (buyer.phone, buyer.email, buyer.recharge_account, command.coupon_code)
    if not same:
        return _refused("idempotencyKey", "this key was already used for a different order", "IDEMPOTENCY_KEY_REUSED")
    return Placed(order)


async def _skus_on_sale(
    session: AsyncSession, lines: list[LineRequest], currency: str, position: dict[int, int]
) -> dict[int, Sku]:
    found = {
        sku.id: (sku, product_active)
        for sku, product_active in await session.execute(
            select(Sku, Product.active)
            .join(Product, Product.id == Sku.product_id)
            .where(Sku.id.in_([line.sku_id for line in lines]))
        )
    }
    for line in lines:
        sku, product_active = found.get(line.sku_id, (None, False))
        if sku is None or not sku.active or not product_active:
            raise OrderInputError(f"lines.{position[line.sku_id]}.skuId", "no such SKU on sale", "UNKNOWN_SKU")
        if sku.currency != currency:
            raise OrderInputError(f"lines.{position[line.sku_id]}.skuId", "this SKU is not sold in the channel's currency", "CURRENCY_MISMATCH")
    return {sku_id: sku for sku_id, (sku, _) in found.items()}


async def _needs_account(session: AsyncSession, skus: list[Sku]) -> bool:
    if any(s.kind is SkuKind.DIRECT_RECHARGE for s in skus):
        return True
    bundles = [s.id for s in skus if s.kind is SkuKind.BUNDLE]
    if not bundles:
        return False
    kinds = await session.scalars(
        select(Sku.kind).join(BundleItem, BundleItem.component_sku_id == Sku.id).where(BundleItem.bundle_sku_id.in_(bundles))
    )
    return any(kind is SkuKind.DIRECT_RECHARGE for kind in kinds)
