"""Operators' campaigns: creating one, and generating its single-use codes."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.campaigns import (
    MAX_GENERATE,
    Bearer,
    CampaignError,
    Discount,
    check_discount,
    check_public_code,
    code_digest,
    code_key,
    generate_code,
)
from domain.money import Money, MoneyError
from models import Campaign, CampaignSku, Channel, CouponCode, Sku
from services.core.csv_cells import safe_row

MAX_SKUS = 1000
MAX_COUNT = 10_000_000
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class NewCampaign:
    name: str
    channel: Channel
    sku_ids: Sequence[int]
    code: str | None = None
    amount_off: Decimal | None = None
    percent_off: int | None = None
    max_discount: Decimal | None = None
    price: Decimal | None = None
    max_redemptions: int | None = None
    per_buyer_limit: int | None = None
    budget: Decimal | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    subsidised: bool = False
    bearer: Bearer = Bearer.PLATFORM


def _money(field: str, value: Decimal | None, currency: str) -> Money | None:
    if value is None:
        return None
    try:
        return Money.of(value, currency)
    except MoneyError as error:
        raise CampaignError(field, str(error)) from None


def _count(field: str, value: int | None) -> None:
    if value is not None and not 1 <= value <= MAX_COUNT:
        raise CampaignError(field, f"1 to {MAX_COUNT:,}, or null for no limit")


async def create_campaign(session: AsyncSession, new: NewCampaign, *, actor: str, now: datetime) -> Campaign:
    """Create the campaign, and its public code if it has one; raises CampaignError."""
    name = new.name.strip()
    if not 1 <= len(name) <= 200 or not name.isprintable():
        raise CampaignError("name", "a name is 1 to 200 printable characters")
    currency = new.channel.currency
    discount = Discount(
        amount_off=_money("amountOff", new.amount_off, currency), percent_off=new.percent_off,
        max_discount=_money("maxDiscount", new.max_discount, currency), price=_money("price", new.price, currency),
    )
    check_discount(discount)
    budget = _money("budget", new.budget, currency)
    if budget is not None and budget.minor <= 0:
        raise CampaignError("budget", "a budget is above zero")
    _count("maxRedemptions", new.max_redemptions)
    _count("perBuyerLimit", new.per_buyer_limit)
    for field, moment in (("startsAt", new.starts_at), ("endsAt", new.ends_at)):
        if moment is not None and moment.tzinfo is None:
            raise CampaignError(field, "give the time zone, e.g. 2026-11-11T00:00:00+08:00")
    if new.starts_at is not None and new.ends_at is not None and new.starts_at >= new.ends_at:
        raise CampaignError("endsAt", "a campaign ends after it starts")
    sku_ids = sorted(set(new.sku_ids))
    if not 1 <= len(sku_ids) <= MAX_SKUS:
        raise CampaignError("skuIds", f"name 1 to {MAX_SKUS} SKUs")
    found = {sku_id: currency for sku_id, currency in await session.execute(select(Sku.id, Sku.currency).where(Sku.id.in_(sku_ids)))}
    for index, sku_id in enumerate(sku_ids):
        if sku_id not in found:
            raise CampaignError(f"skuIds.{index}", "no such SKU")
        if found[sku_id] != currency:
            raise CampaignError(f"skuIds.{index}", "this SKU is not sold in the channel's currency")
    digest = None
    if new.code is not None:
        digest = code_digest(check_public_code(new.code))
        if await session.scalar(select(CouponCode.id).where(CouponCode.digest == digest)) is not None:
            raise CampaignError("code", "this code is taken by another campaign")

    campaign = Campaign(
        name=name, channel_id=new.channel.id, code=new.code.strip() if new.code else None,
        amount_off_fen=discount.amount_off.minor if discount.amount_off else None, percent_off=discount.percent_off,
        max_discount_fen=discount.max_discount.minor if discount.max_discount else None,
        price_fen=discount.price.minor if discount.price else None,
        max_redemptions=new.max_redemptions, redemptions=0, budget_fen=budget.minor if budget else None, spent_fen=0,
        per_buyer_limit=new.per_buyer_limit, starts_at=new.starts_at, ends_at=new.ends_at,
        subsidised=new.subsidised, bearer=new.bearer, active=True, created_by=actor, created_at=now,
    )
    session.add(campaign)
    await session.flush()
    session.add_all(CampaignSku(campaign_id=campaign.id, sku_id=sku_id) for sku_id in sku_ids)
    if digest is not None:
        session.add(CouponCode(campaign_id=campaign.id, digest=digest, single_use=False, created_at=now))
    await session.flush()
    return campaign


async def end_campaign(session: AsyncSession, campaign_id: int) -> Campaign | None:
    """Stop a campaign at once: no order redeems it from now on (the redemption's conditional
    UPDATE checks `active`, so an order in flight is refused too). Orders that already
    redeemed keep their discount. None: no such campaign."""
    campaign = await session.get(Campaign, campaign_id, with_for_update=True)
    if campaign is not None:
        campaign.active = False
        await session.flush()
    return campaign


async def generate_codes(session: AsyncSession, campaign_id: int, count: int, *, now: datetime) -> list[str]:
    """`count` new single-use codes of the campaign. Only their digests are stored: the codes
    exist in the answer and nowhere else, so the caller hands them out (or writes them to a
    file) now. Raises CampaignError."""
    if not 1 <= count <= MAX_GENERATE:
        raise CampaignError("count", f"1 to {MAX_GENERATE:,} codes at a time")
    if await session.get(Campaign, campaign_id) is None:
        raise CampaignError("campaignId", "no such campaign")
    codes: dict[str, str] = {}
    while len(codes) < count:  # a repeat among 2^80 is next to impossible, but cheap to rule out
        code = generate_code()
        key = code_key(code)
        assert key is not None
        codes.setdefault(code_digest(key), code)
    rows = [{"campaign_id": campaign_id, "digest": d, "single_use": True, "order_id": None, "created_at": now}
            for d in codes]
    for start in range(0, len(rows), _BATCH):
        await session.execute(insert(CouponCode), rows[start:start + _BATCH])
    return list(codes.values())


def write_codes_csv(path: Path, campaign: Campaign, codes: Sequence[str]) -> None:
    """The codes as a CSV an operator can open in a spreadsheet safely (services/core/csv_cells.py)."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["campaign", "code"])
        for code in codes:
            writer.writerow(safe_row([campaign.name, code]))
