"""The reads before an order's write transaction: the channel, the key, the SKUs on sale, the
buyer, the limits that apply (限购, holds), the prices, and the risk check's verdict, gathered
into a draft of the order."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.campaigns import COUPON_LIMIT, PricedLine
from domain.contacts import ContactError, device_key, email_address, mainland_mobile
from domain.limits import Breach, HoldLimit, Identity, PurchaseLimit, Tally, tallies
from domain.money import Money
from domain.orders import LineRequest, OrderInputError, check_lines
from domain.recharge_accounts import AccountFormat, accepts, describe
from domain.risk import Decision, Facts, Verdict
from domain.sales import Refusal as SaleRefusal
from models import Order, Sku
from services.campaigns import guesses
from services.campaigns.coupons import Applied, CouponRefusal, apply_coupon, campaign_scope
from services.inventory.sold_out import SoldOutGate
from services.orders.terms import SkuTerms, Terms
from services.risk.check import RiskCheck

NOT_ENOUGH_STOCK = "not enough stock for this quantity"


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


def _check_account(buyer: Buyer, formats: list[tuple[AccountFormat, ...]] | None) -> None:
    """`formats`: the accounts each top-up of the order accepts; None when it has no top-up."""
    if formats is not None and not (buyer.recharge_account or "").strip():
        raise OrderInputError("buyer.rechargeAccount", "a top-up needs the account to credit", "RECHARGE_ACCOUNT_REQUIRED")
    for accepted in formats or ():
        if not accepts(accepted, buyer.recharge_account or ""):
            raise OrderInputError("buyer.rechargeAccount", f"this top-up takes {describe(accepted)}", "INVALID_RECHARGE_ACCOUNT")


class SaleCheck(Protocol):
    """The scheduled sales (预约抢购) as placement consults them (services/sales/book.py)."""

    async def admit(
        self, session: AsyncSession, channel_id: int, sku_ids: Collection[int], who: Identity, now: datetime
    ) -> tuple[int, SaleRefusal] | None: ...


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
    tallies: list[Tally] = field(default_factory=list)  # what the order adds to its buyers' counts
    limits: dict[int, PurchaseLimit] = field(default_factory=dict)  # the SKUs' limits on the channel
    coupon: Applied | None = None  # the coupon the order redeems; `total` is net of its discount


async def draft(
    session: AsyncSession, command: PlaceOrder, now: datetime, risk: RiskCheck | None,
    public_hold: HoldLimit | None = None, sales: SaleCheck | None = None, *, terms: Terms | None = None,
    look_up_key: bool = True, gate: SoldOutGate | None = None,
) -> Draft | Placed | KeyTaken:
    """The reads, checks and risk verdict of an attempt, or a refusal, or its key already taken.

    `public_hold` is given for a caller from the public (anonymous, or a storefront key): the
    gateway's hold caps, which the channel's own replace. Such a caller's address counts as
    a buyer (domain/limits.py); a partner's or an operator's orders are held to no hold cap.
    `sales`: the scheduled sales (预约抢购), which refuse a SKU before its start or a buyer
    who did not register.

    `terms`: the process's copy of channels, SKUs, prices and limits (none: read them).
    `look_up_key=False` leaves a key already taken to the write, whose insert meets the
    unique index anyway. `gate`: a SKU it holds sold out is refused here, before pricing
    and the risk check, unless the key placed an order (a retry is answered with it).
    """
    terms = terms or Terms(ttl_seconds=0)
    key = command.idempotency_key.strip()
    if not 1 <= len(key) <= 128:
        return refused("idempotencyKey", "1 to 128 characters", "INVALID_INPUT")
    channel = await terms.channel(session, command.channel)
    if channel is None or not channel.active:
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

    if look_up_key and await session.scalar(
        select(Order.id).where(Order.channel_id == channel_id, Order.idempotency_key == key)
    ):
        return KeyTaken(channel_id, lines, buyer)

    try:
        on_sale = await _skus_on_sale(session, terms, lines, currency, position, channel_id, now)
        _check_account(buyer, [formats for sku in on_sale.values() for formats in sku.top_ups] or None)
    except OrderInputError as error:
        return refused(error.field, error.message, error.code)
    limits = {sku_id: sku.limit for sku_id, sku in on_sale.items() if sku.limit is not None}
    hold = public_hold.over(channel.hold) if public_hold is not None else None
    who = Identity(
        phone=buyer.phone, email=buyer.email, device=buyer.device_id,
        account=(buyer.recharge_account or "").strip() or None,
        address=command.client_ip if public_hold is not None else None,
    )
    if sales is not None and (barred := await sales.admit(session, channel_id, on_sale, who, now)) is not None:
        return refused(f"lines.{position[barred[0]]}.skuId", barred[1].message, barred[1].code)
    counted = tallies({line.sku_id: line.quantity for line in lines}, limits, hold, who, channel_id=channel_id, now=now)
    if isinstance(counted, Breach):
        return limit_refusal(counted, lines, position)

    if gate is not None:
        sold_out = gate.refuses(channel_id, [line.sku_id for line in lines])
        if sold_out is not None and not await gate.placed.has(channel_id, key):
            return refused(f"lines.{position[sold_out]}.quantity", NOT_ENOUGH_STOCK, "OUT_OF_STOCK")

    units = [on_sale[line.sku_id].pricing.at(now, line.quantity).unit for line in lines]
    total = sum((unit * line.quantity for unit, line in zip(units, lines, strict=True)), Money(0, currency))
    coupon: Applied | None = None
    if command.coupon_code is not None and command.coupon_code.strip():
        applied = await _coupon(session, command.coupon_code, channel_id, lines, units, on_sale, who, risk, now)
        if isinstance(applied, CouponRefusal):
            return refused("couponCode", applied.message, applied.code)
        coupon = applied
        total -= Money(coupon.total, currency)
        if coupon.per_buyer_limit is not None:
            scope = campaign_scope(coupon.campaign_id)
            counted = [*counted, *(Tally(scope, buyer, 1, coupon.per_buyer_limit) for buyer in who.buyers())]
    facts = _facts(command, buyer, channel_code, lines, total, now, coupon)
    verdict = Verdict(Decision.PASS, 0)
    if risk is not None:
        # The key makes the check's counting idempotent: a retry is answered as its first try.
        verdict, facts = await risk.screen(session, facts, attempt=key)
    skus = {sku_id: sku.sku for sku_id, sku in on_sale.items()}
    return Draft(
        channel_id, currency, key, lines, position, skus, units, total, verdict, facts, buyer, counted, limits, coupon,
    )


async def _coupon(
    session: AsyncSession, code: str, channel_id: int, lines: list[LineRequest], units: list[Money],
    on_sale: dict[int, SkuTerms], who: Identity, risk: RiskCheck | None, now: datetime,
) -> Applied | CouponRefusal:
    """The coupon applied to the priced lines, or why not; a buyer or address that missed too
    often is refused before the code is looked up (services/campaigns/guesses.py)."""
    counters = risk.counters if risk is not None else None
    if counters is not None and await guesses.barred(counters, who, now.timestamp()):
        return CouponRefusal(guesses.TOO_MANY)
    priced = [
        PricedLine(line.sku_id, line.quantity, unit, _money(on_sale[line.sku_id].sku.price_floor_fen, unit.currency))
        for line, unit in zip(lines, units, strict=True)
    ]
    applied = await apply_coupon(session, channel_id, code, priced, now)
    if isinstance(applied, CouponRefusal) and applied.miss and counters is not None:
        await guesses.missed(counters, who, now.timestamp())
    return applied


def _money(fen: int | None, currency: str) -> Money | None:
    return Money(fen, currency) if fen is not None else None


def _facts(
    command: PlaceOrder, buyer: Buyer, channel: str, lines: list[LineRequest], total: Money, now: datetime,
    coupon: Applied | None,
) -> Facts:
    # The risk check sees the campaign, never the code: a generated code is a secret, and
    # every spelling of a public one is the same campaign to a rule.
    return Facts(
        channel=channel, at=now, amount=total, quantities={line.sku_id: line.quantity for line in lines},
        client_ip=command.client_ip, device_id=buyer.device_id, phone=buyer.phone, email=buyer.email,
        account=buyer.recharge_account or buyer.email,
        coupon=f"campaign:{coupon.campaign_id}" if coupon is not None else None,
    )


def refused(field: str | None, message: str, code: str) -> Placed:
    return Placed(None, refusals=[Refusal(field, message, code)])


def limit_refusal(breach: Breach, lines: list[LineRequest], position: dict[int, int]) -> Placed:
    """A limit's refusal, naming the line at fault; for a hold, the largest line (the one to lower)."""
    if breach.code == COUPON_LIMIT:
        return refused("couponCode", breach.message, breach.code)
    sku_id = breach.sku_id if breach.sku_id is not None else max(lines, key=lambda line: line.quantity).sku_id
    return refused(f"lines.{position[sku_id]}.quantity", breach.message, breach.code)


async def _skus_on_sale(
    session: AsyncSession, terms: Terms, lines: list[LineRequest], currency: str, position: dict[int, int],
    channel_id: int, now: datetime,
) -> dict[int, SkuTerms]:
    """The SKUs on sale here (active, of an active product listed on the channel), with
    their purchase limits, prices and top-up formats on the channel."""
    found = await terms.skus(session, channel_id, [line.sku_id for line in lines], now)
    for line in lines:
        sku = found.get(line.sku_id)
        if sku is None or not sku.on_sale:
            raise OrderInputError(f"lines.{position[line.sku_id]}.skuId", "no such SKU on sale", "UNKNOWN_SKU")
        if sku.sku.currency != currency:
            raise OrderInputError(f"lines.{position[line.sku_id]}.skuId", "this SKU is not sold in the channel's currency", "CURRENCY_MISMATCH")
    return found
