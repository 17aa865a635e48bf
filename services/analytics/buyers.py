"""Buyer profiles: summed in SQL per buyer identity, merged per pseudonym, stored, and read by operators;
buyer contacts erased after the retention period with the figures kept.

A refresh recomputes every profile from the orders and verdicts (a handful of GROUP BY
statements) and replaces the table in one transaction; on PostgreSQL one process at a time
(an advisory lock), the others skip. Erasure writes each old order's pseudonym (`buyer_ref`)
before it clears the order's contacts, and the verdicts' facts keep the pseudonym in place of
the contacts, so the next refresh still counts those orders and verdicts for the same buyer.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.buyers import Figures, Segment, buyer_key, masked, merged, segment
from domain.contacts import ContactError, email_key, phone_key
from domain.orders import OrderStatus
from domain.risk import Decision
from models import BuyerProfile, Category, Channel, Order, OrderLine, Product, RiskLabel, RiskVerdict, Sku

_REFRESH_LOCK = 0x5159_0007
# Orders whose contacts may go: those nothing will happen to any more.
SETTLED = (OrderStatus.DELIVERED, OrderStatus.PARTIALLY_DELIVERED, OrderStatus.REFUNDED, OrderStatus.CANCELLED,
           OrderStatus.EXPIRED, OrderStatus.REJECTED, OrderStatus.FAILED)
CONTACT_FACTS = ("phone", "email", "account", "deviceId", "clientIp")
ERASE_BATCH = 500
NOBODY = "-"  # the pseudonym of an erased order that named no buyer


def profile_secret(secret_key: bytes) -> bytes:
    """The key of buyer pseudonyms, derived from the gateway's secret key (never the key itself)."""
    return hashlib.sha256(b"quanyi buyer profiles\x00" + secret_key).digest()


def _identity() -> ColumnElement[str]:
    """The buyer an order is by, in SQL: `k:<pseudonym>` once erased, else phone, e-mail or account."""
    return case(
        (Order.buyer_ref == NOBODY, None),
        (Order.buyer_ref.is_not(None), literal("k:") + Order.buyer_ref),
        (Order.buyer_phone.is_not(None), literal("p:") + Order.buyer_phone),
        (Order.buyer_email.is_not(None), literal("e:") + Order.buyer_email),
        (Order.recharge_account.is_not(None), literal("a:") + Order.recharge_account),
        else_=None,
    )


def _key(secret: bytes, identity: str) -> str:
    return identity[2:] if identity.startswith("k:") else buyer_key(secret, identity)


def _paid() -> ColumnElement[bool]:
    return and_(Order.paid_at.is_not(None), Order.status != OrderStatus.REFUNDED)


async def figures(session: AsyncSession, secret: bytes) -> dict[str, Figures]:
    """Every buyer's figures, by pseudonym."""
    who = _identity().label("who")
    parts: list[tuple[str, Figures]] = []
    for identity, attempts, paid, first, last, coupons in await session.execute(
        select(who, func.count(), func.sum(case((_paid(), 1), else_=0)), func.min(Order.created_at),
               func.max(Order.created_at), func.sum(case((Order.coupon_code.is_not(None), 1), else_=0)))
        .where(who.is_not(None)).group_by(who)
    ):
        parts.append((_key(secret, identity), Figures(
            attempts=attempts, orders=int(paid or 0), first_at=_utc(first), last_at=_utc(last),
            coupon_orders=int(coupons or 0), contact=None if identity.startswith("k:") else masked(identity),
        )))
    for identity, currency, fen in await session.execute(
        select(who, Order.currency, func.sum(Order.total_fen)).where(who.is_not(None), _paid()).group_by(who, Order.currency)
    ):
        parts.append((_key(secret, identity), Figures(spent=Counter({currency: int(fen)}))))
    for identity, channel, count in await session.execute(
        select(who, Channel.code, func.count()).join(Channel, Channel.id == Order.channel_id)
        .where(who.is_not(None)).group_by(who, Channel.code)
    ):
        parts.append((_key(secret, identity), Figures(channels=Counter({channel: count}))))
    for identity, category, count in await session.execute(
        select(who, Category.code, func.count(func.distinct(Order.id)))
        .join(OrderLine, OrderLine.order_id == Order.id).join(Sku, Sku.id == OrderLine.sku_id)
        .join(Product, Product.id == Sku.product_id).join(Category, Category.id == Product.category_id)
        .where(who.is_not(None)).group_by(who, Category.code)
    ):
        parts.append((_key(secret, identity), Figures(categories=Counter({category: count}))))
    for identity, reviews, fraud in await session.execute(
        select(who, func.sum(case((RiskVerdict.decision == Decision.REVIEW, 1), else_=0)),
               func.sum(case((RiskLabel.fraud.is_(True), 1), else_=0)))
        .join(RiskVerdict, RiskVerdict.order_id == Order.id)
        .outerjoin(RiskLabel, RiskLabel.verdict_id == RiskVerdict.id)
        .where(who.is_not(None)).group_by(who)
    ):
        parts.append((_key(secret, identity), Figures(reviews=int(reviews or 0), fraud_labels=int(fraud or 0))))
    # A rejected attempt made no order: its verdict's facts name the buyer.
    for (facts,) in await session.execute(
        select(RiskVerdict.facts).where(RiskVerdict.decision == Decision.REJECT, RiskVerdict.order_id.is_(None))
    ):
        identity = _identity_of_facts(facts or {})
        if identity is not None:
            contact = None if identity.startswith("k:") else masked(identity)
            parts.append((_key(secret, identity), Figures(rejects=1, contact=contact)))
    return merged(parts)


def _identity_of_facts(facts: dict[str, Any]) -> str | None:
    if facts.get("buyerRef"):
        return "k:" + str(facts["buyerRef"])
    for kind, name, canonical in (("p", "phone", phone_key), ("e", "email", email_key)):
        if facts.get(name):
            try:
                return f"{kind}:{canonical(str(facts[name]))}"
            except ContactError:
                continue
    account = facts.get("account")
    return f"a:{account}" if account else None


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands aggregates back untyped
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def refresh(session: AsyncSession, secret: bytes, *, now: datetime, found: dict[str, Figures] | None = None) -> int | None:
    """Replace every profile with what the orders say now; None when another process is at it.

    `found`: figures already summed outside this transaction (SQLite, where a write
    transaction holds the database's one write lock and the sums must not run under it)."""
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        if not await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)").bindparams(k=_REFRESH_LOCK)):
            return None
    if found is None:
        found = await figures(session, secret)
    await session.execute(delete(BuyerProfile))
    session.add_all(
        BuyerProfile(
            key=key, contact=f.contact, segment=segment(f, now), attempts=f.attempts, orders=f.orders,
            coupon_orders=f.coupon_orders, reviews=f.reviews, rejects=f.rejects, fraud_labels=f.fraud_labels,
            first_at=f.first_at, last_at=f.last_at, spent=dict(f.spent), channels=dict(f.channels),
            categories=dict(f.categories), refreshed_at=now,
        )
        for key, f in found.items()
    )
    await session.flush()
    return len(found)


async def erase_contacts(session: AsyncSession, secret: bytes, *, before: datetime) -> int:
    """Clear the contacts of settled orders placed before `before`, and of verdicts as old, keeping the
    buyer's pseudonym in their place. Returns the orders erased."""
    erased = 0
    while True:
        rows = (await session.execute(
            select(Order.id, _identity()).where(
                Order.created_at < before, Order.buyer_ref.is_(None), Order.status.in_(SETTLED),
            ).limit(ERASE_BATCH)
        )).all()
        if not rows:
            break
        for order_id, identity in rows:
            await session.execute(update(Order).where(Order.id == order_id).values(
                buyer_ref=_key(secret, identity) if identity else NOBODY, buyer_phone=None, buyer_email=None,
                recharge_account=None, device_id=None, client_ip=None,
            ))
        erased += len(rows)
    for verdict_id, facts in (await session.execute(
        select(RiskVerdict.id, RiskVerdict.facts).where(RiskVerdict.created_at < before)
    )).all():
        if not facts or not any(facts.get(name) for name in CONTACT_FACTS):
            continue
        identity = _identity_of_facts(facts)
        kept = {name: value for name, value in facts.items() if name not in CONTACT_FACTS}
        if identity is not None:
            kept["buyerRef"] = _key(secret, identity)
        await session.execute(update(RiskVerdict).where(RiskVerdict.id == verdict_id).values(facts=kept))
    return erased


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[BuyerProfile]
    has_next: bool


async def profiles(
    session: AsyncSession, *, segment_: Segment | None, after: str | None, first: int
) -> Page:
    query = select(BuyerProfile).order_by(BuyerProfile.key).limit(first + 1)
    if segment_ is not None:
        query = query.where(BuyerProfile.segment == segment_)
    if after is not None:
        query = query.where(BuyerProfile.key > after)
    rows = list(await session.scalars(query))
    return Page(rows[:first], len(rows) > first)


async def segment_counts(session: AsyncSession) -> dict[Segment, int]:
    found = {s: 0 for s in Segment}
    for value, count in await session.execute(
        select(BuyerProfile.segment, func.count()).group_by(BuyerProfile.segment)
    ):
        found[value] = count
    return found

