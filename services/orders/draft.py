"""The reads before an order's write transaction: the channel, the key, the SKUs on sale, the
buyer, the prices, and the risk check's verdict, gathered into a draft of the order."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import SkuKind
from domain.money import Money
from domain.orders import LineRequest, OrderInputError, check_lines
from domain.recharge_accounts import AccountFormat, accepts, describe, parse_formats
from domain.risk import Decision, Facts, Verdict
from models import BundleItem, Channel, Listing, Order, Product, Sku
from services.pricing.prices import pricing_for
from services.risk.check import RiskCheck

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


def _check_buyer(buyer: Buyer, formats: list[tuple[AccountFormat, ...]] | None) -> None:
    """`formats`: the accounts each top-up of the order accepts; None when it has no top-up."""
    needs_account = formats is not None
    if buyer.phone is not None and not _PHONE.fullmatch(buyer.phone):
        raise OrderInputError("buyer.phone", "a phone number is digits, optionally with a leading +")
    if buyer.email is not None and not _EMAIL.fullmatch(buyer.email):
        raise OrderInputError("buyer.email", "not an email address")
    if buyer.phone is None and buyer.email is None:
        raise OrderInputError("buyer", "give a phone number or an email address for delivery", "CONTACT_REQUIRED")
    if needs_account and not (buyer.recharge_account or "").strip():
        raise OrderInputError("buyer.rechargeAccount", "a top-up needs the account to credit", "RECHARGE_ACCOUNT_REQUIRED")
    for accepted in formats or ():
        if not accepts(accepted, buyer.recharge_account or ""):
            raise OrderInputError("buyer.rechargeAccount", f"this top-up takes {describe(accepted)}", "INVALID_RECHARGE_ACCOUNT")
    for name, value in (("rechargeAccount", buyer.recharge_account), ("deviceId", buyer.device_id)):
        if value is not None and len(value) > 128:
            raise OrderInputError(f"buyer.{name}", "at most 128 characters")


@dataclass(frozen=True, slots=True)
class KeyTaken:
    """An order already holds the attempt's key: the write side answers the retry."""

    channel_id: int
    lines: list[LineRequest]


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
    except OrderInputError as error:
        return refused(error.field, error.message, error.code)
    # Refusals name the line as the buyer sent it, before lines of one SKU were merged.
    position: dict[int, int] = {}
    for index, line in enumerate(command.lines):
        position.setdefault(line.sku_id, index)

    if await session.scalar(select(Order.id).where(Order.channel_id == channel_id, Order.idempotency_key == key)):
        return KeyTaken(channel_id, lines)

    try:
        skus = await _skus_on_sale(session, lines, channel_id, currency, position)
        _check_buyer(command.buyer, await _account_formats(session, list(skus.values())))
    except OrderInputError as error:
        return refused(error.field, error.message, error.code)

    prices = await pricing_for(session, [(channel_id, line.sku_id) for line in lines], now, skus=skus)
    units = [prices[(channel_id, line.sku_id)].at(now, line.quantity).unit for line in lines]
    total = sum((unit * line.quantity for unit, line in zip(units, lines, strict=True)), Money(0, currency))
    facts = _facts(command, channel_code, lines, total, now)
    verdict = Verdict(Decision.PASS, 0)
    if risk is not None:
        verdict, facts = await risk.screen(session, facts)
    return Draft(channel_id, currency, key, lines, position, skus, units, total, verdict, facts)


def _facts(command: PlaceOrder, channel: str, lines: list[LineRequest], total: Money, now: datetime) -> Facts:
    buyer = command.buyer
    return Facts(
        channel=channel, at=now, amount=total, quantities={line.sku_id: line.quantity for line in lines},
        client_ip=command.client_ip, device_id=buyer.device_id, phone=buyer.phone, email=buyer.email,
        account=buyer.recharge_account or buyer.email, coupon=command.coupon_code,
    )


def refused(field: str | None, message: str, code: str) -> Placed:
    return Placed(None, refusals=[Refusal(field, message, code)])


async def _skus_on_sale(
    session: AsyncSession, lines: list[LineRequest], channel_id: int, currency: str, position: dict[int, int]
) -> dict[int, Sku]:
    # On sale here: active, of an active product, and that product listed on the channel.
    found = {
        sku.id: (sku, product_active and listed is not None)
        for sku, product_active, listed in await session.execute(
            select(Sku, Product.active, Listing.position)
            .join(Product, Product.id == Sku.product_id)
            .outerjoin(Listing, (Listing.product_id == Product.id) & (Listing.channel_id == channel_id))
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


async def _account_formats(session: AsyncSession, skus: list[Sku]) -> list[tuple[AccountFormat, ...]] | None:
    """The accounts each top-up in the order (bundles' included) accepts; None: no top-up."""
    top_ups = [s.account_formats for s in skus if s.kind is SkuKind.DIRECT_RECHARGE]
    bundles = [s.id for s in skus if s.kind is SkuKind.BUNDLE]
    if bundles:
        top_ups += await session.scalars(
            select(Sku.account_formats).join(BundleItem, BundleItem.component_sku_id == Sku.id)
            .where(BundleItem.bundle_sku_id.in_(bundles), Sku.kind == SkuKind.DIRECT_RECHARGE)
        )
    return [parse_formats(stored) for stored in top_ups] if top_ups else None
