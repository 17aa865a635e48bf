"""The reads before an order's write transaction: the channel, the key, the SKUs on sale, the
buyer, the prices, and the risk check's verdict, gathered into a draft of the order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import SkuKind
from domain.contacts import ContactError, device_key, email_address, mainland_mobile
from domain.money import Money
from domain.orders import LineRequest, OrderInputError, check_lines
from domain.risk import Decision, Facts, Verdict
from models import BundleItem, Channel, Order, Product, Sku
from services.pricing.prices import pricing_for
from services.risk.check import RiskCheck


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


def _canonical(field: str, value: str | None, form: Callable[[str], str]) -> str | None:
    """The value in its canonical form; blank is not given."""
    if value is None or not value.strip():
        return None
    try:
        return form(value)
    except ContactError as error:
        raise OrderInputError(field, str(error)) from None


def canonical_buyer(buyer: Buyer) -> Buyer:
    """The buyer as orders store it and the risk check and retries compare it (domain/contacts.py)."""
    phone = _canonical("buyer.phone", buyer.phone, mainland_mobile)
    email = _canonical("buyer.email", buyer.email, email_address)
    if phone is None and email is None:
        raise OrderInputError("buyer", "give a phone number or an email address for delivery", "CONTACT_REQUIRED")
    for name, value in (("rechargeAccount", buyer.recharge_account), ("deviceId", buyer.device_id)):
        if value is not None and len(value) > 128:
            raise OrderInputError(f"buyer.{name}", "at most 128 characters")
    return Buyer(phone, email, buyer.recharge_account, _canonical("buyer.deviceId", buyer.device_id, device_key))


def _check_account(buyer: Buyer, needs_account: bool) -> None:
    if needs_account and not (buyer.recharge_account or "").strip():
        raise OrderInputError("buyer.rechargeAccount", "a top-up needs the account to credit", "RECHARGE_ACCOUNT_REQUIRED")


@dataclass(frozen=True, slots=True)
class KeyTaken:
    """An order already holds the attempt's key: the write side answers the retry."""

    channel_id: int
    lines: list[LineRequest]
    buyer: Buyer  # canonical: the retry is compared in the form the order stored


@dataclass(frozen=True, slots=True)
class Draft:
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
    buyer: Buyer  # canonical


async def draft(
    session: AsyncSession, command: PlaceOrder, now: datetime, risk: RiskCheck | None
) -> Draft | Placed | KeyTaken:
    """The reads, checks and risk verdict of an attempt, or a refusal, or its key already taken."""
    key = command.idempotency_key.strip()
    if not 1 <= len(key) <= 128:
        return refused("idempotencyKey", "1 to 128 characters", "INVALID_INPUT")
    channel = await session.scalar(select(Channel).where(Channel.code == command.channel, Channel.active.is_(True)))
    if channel is None:
        return refused("channel", f"unknown channel {command.channel!r}", "UNKNOWN_CHANNEL")
    channel_id, currency, channel_code = channel.id, channel.currency, channel.code

    try:
        lines = check_lines(command.lines)
        buyer = canonical_buyer(command.buyer)
    except OrderInputError as error:
        return refused(error.field, error.message, error.code)
    # Refusals name the line as the buyer sent it, before lines of one SKU were merged.
    position: dict[int, int] = {}
    for index, line in enumerate(command.lines):
        position.setdefault(line.sku_id, index)

    if await session.scalar(select(Order.id).where(Order.channel_id == channel_id, Order.idempotency_key == key)):
        return KeyTaken(channel_id, lines, buyer)

    try:
        skus = await _skus_on_sale(session, lines, currency, position)
        _check_account(buyer, await _needs_account(session, list(skus.values())))
    except OrderInputError as error:
        return refused(error.field, error.message, error.code)

    prices = await pricing_for(session, [(channel_id, line.sku_id) for line in lines], now, skus=skus)
    units = [prices[(channel_id, line.sku_id)].at(now, line.quantity).unit for line in lines]
    total = sum((unit * line.quantity for unit, line in zip(units, lines, strict=True)), Money(0, currency))
    facts = _facts(command, buyer, channel_code, lines, total, now)
    verdict = Verdict(Decision.PASS, 0)
    if risk is not None:
        # The key makes the check's counting idempotent: a retry is answered as its first try.
        verdict, facts = await risk.screen(session, facts, attempt=key)
    return Draft(channel_id, currency, key, lines, position, skus, units, total, verdict, facts, buyer)


def _facts(
    command: PlaceOrder, buyer: Buyer, channel: str, lines: list[LineRequest], total: Money, now: datetime
) -> Facts:
    return Facts(
        channel=channel, at=now, amount=total, quantities={line.sku_id: line.quantity for line in lines},
        client_ip=command.client_ip, device_id=buyer.device_id, phone=buyer.phone, email=buyer.email,
        account=buyer.recharge_account or buyer.email, coupon=command.coupon_code,
    )


def refused(field: str | None, message: str, code: str) -> Placed:
    return Placed(None, refusals=[Refusal(field, message, code)])


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
