"""Placing an order: idempotent, priced on the server, stock reserved in the same transaction."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from domain.access import Principal
from domain.catalog import SkuKind
from domain.money import Money
from domain.orders import LineRequest, OrderInputError, OrderStatus, check_lines
from models import BundleItem, Channel, Order, OrderLine, Sku
from services import quotas
from services.order_events import record_transition
from services.pricing import pricing_for
from services.reservation import OutOfStock, reserve
from services.unit_of_work import UnitOfWork

_PHONE = re.compile(r"^\+?[0-9]{6,20}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$")


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
    if buyer.phone is not None and not _PHONE.match(buyer.phone):
        raise OrderInputError("buyer.phone", "a phone number is digits, optionally with a leading +")
    if buyer.email is not None and not _EMAIL.match(buyer.email):
        raise OrderInputError("buyer.email", "not an email address")
    if buyer.phone is None and buyer.email is None:
        raise OrderInputError("buyer", "give a phone number or an email address for delivery", "CONTACT_REQUIRED")
    if needs_account and not (buyer.recharge_account or "").strip():
        raise OrderInputError("buyer.rechargeAccount", "a top-up needs the account to credit", "RECHARGE_ACCOUNT_REQUIRED")
    for name, value in (("rechargeAccount", buyer.recharge_account), ("deviceId", buyer.device_id)):
        if value is not None and len(value) > 128:
            raise OrderInputError(f"buyer.{name}", "at most 128 characters")


async def place_order(
    uow: UnitOfWork, command: PlaceOrder, principal: Principal, *, now: datetime, ttl: timedelta
) -> Placed:
    session = uow.session
    key = command.idempotency_key.strip()
    if not 1 <= len(key) <= 128:
        return Placed(None, refusals=[Refusal("idempotencyKey", "1 to 128 characters", "INVALID_INPUT")])
    channel = await session.scalar(select(Channel).where(Channel.code == command.channel, Channel.active.is_(True)))
    if channel is None:
        return Placed(None, refusals=[Refusal("channel", f"unknown channel {command.channel!r}", "UNKNOWN_CHANNEL")])

    existing = await _existing(uow, channel.id, key)
    if existing is not None:
        return Placed(existing)

    try:
        lines = check_lines(command.lines)
        skus = {s.id: s for s in await session.scalars(select(Sku).where(Sku.id.in_([l.sku_id for l in lines])))}
        for index, line in enumerate(lines):
            sku = skus.get(line.sku_id)
            if sku is None or not sku.active:
                raise OrderInputError(f"lines.{index}.skuId", "no such SKU on sale", "UNKNOWN_SKU")
            if sku.currency != channel.currency:
                raise OrderInputError(f"lines.{index}.skuId", "this SKU is not sold in the channel's currency", "CURRENCY_MISMATCH")
        _check_buyer(command.buyer, await _needs_account(uow, list(skus.values())))
    except OrderInputError as error:
        return Placed(None, refusals=[Refusal(error.field, error.message, error.code)])

    prices = await pricing_for(session, [(channel.id, line.sku_id) for line in lines], now)
    units = [prices[(channel.id, line.sku_id)].at(now, line.quantity).unit for line in lines]
    total = sum((unit * line.quantity for unit, line in zip(units, lines, strict=True)), Money(0, channel.currency))

    order = Order(
        number=_order_number(now), channel_id=channel.id, idempotency_key=key,
        status=OrderStatus.PENDING_RISK, currency=channel.currency, total_fen=total.minor,
        buyer_phone=command.buyer.phone, buyer_email=command.buyer.email,
        recharge_account=command.buyer.recharge_account, device_id=command.buyer.device_id,
        coupon_code=command.coupon_code, client_ip=command.client_ip, placed_by=principal.actor,
        created_at=now, updated_at=now,
    )
    session.add(order)
    try:
        # The unique (channel, key) index decides between concurrent duplicates, here,
        # before any stock is touched.
        await session.flush()
    except IntegrityError:
        await uow.rollback()
        return Placed(await _existing(uow, channel.id, key))
    record_transition(session, order, None, OrderStatus.PENDING_RISK, principal.actor, "placed", now)

    changed: list[int] = []
    for index, (line, unit) in enumerate(zip(lines, units, strict=True)):
        row = OrderLine(order_id=order.id, sku_id=line.sku_id, quantity=line.quantity, unit_price_fen=unit.minor)
        session.add(row)
        await session.flush()
        if not await quotas.consume(session, channel.id, line.sku_id, line.quantity):
            await uow.rollback()
            return Placed(None, refusals=[Refusal(f"lines.{index}.quantity", "the channel's quota for this SKU is used up", "QUOTA_EXCEEDED")])
        try:
            row.presale_quantity = await reserve(session, row.id, skus[line.sku_id], line.quantity, now)
        except OutOfStock:
            await uow.rollback()
            return Placed(None, refusals=[Refusal(f"lines.{index}.quantity", "not enough stock for this quantity", "OUT_OF_STOCK")])
        changed.append(line.sku_id)

    order.status = OrderStatus.PENDING_PAYMENT
    order.expires_at = now + ttl
    record_transition(session, order, OrderStatus.PENDING_RISK, OrderStatus.PENDING_PAYMENT, "system", "no risk rules matched", now)
    await session.flush()
    return Placed(order, created=True, changed_skus=changed)


async def _existing(uow: UnitOfWork, channel_id: int, key: str) -> Order | None:
    return await uow.session.scalar(
        select(Order).where(Order.channel_id == channel_id, Order.idempotency_key == key)
    )


async def _needs_account(uow: UnitOfWork, skus: list[Sku]) -> bool:
    if any(s.kind is SkuKind.DIRECT_RECHARGE for s in skus):
        return True
    bundles = [s.id for s in skus if s.kind is SkuKind.BUNDLE]
    if not bundles:
        return False
    kinds = await uow.session.scalars(
        select(Sku.kind).join(BundleItem, BundleItem.component_sku_id == Sku.id).where(BundleItem.bundle_sku_id.in_(bundles))
    )
    return any(kind is SkuKind.DIRECT_RECHARGE for kind in kinds)
