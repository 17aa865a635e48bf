"""Buyer profiles (用户画像): one buyer's figures, merged from what the database sums, and their segment.

A buyer is their canonical phone, else their e-mail, else the recharge account their orders
name (domain/contacts.py forms). Profiles are keyed by a keyed hash of that identity, never by
the contact itself: once contacts are erased for retention, the hash still gathers the buyer's
old orders with the new ones, and the profile keeps its figures.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.contacts import mask_contacts

NEW_FOR = timedelta(days=30)
ACTIVE_WITHIN = timedelta(days=30)
AT_RISK_AFTER = timedelta(days=60)
HIGH_VALUE_FEN = 100_000  # 1,000.00 spent (paid, not refunded), any currency counted in its own minor units


class Segment(enum.Enum):
    NEW = "NEW"  # first order within the last 30 days
    ACTIVE = "ACTIVE"  # ordered again within the last 30 days
    AT_RISK = "AT_RISK"  # a repeat buyer silent for 60 days or more
    HIGH_VALUE = "HIGH_VALUE"  # spent 1,000 or more
    SUSPICIOUS = "SUSPICIOUS"  # rejected or labelled fraud, or held for review twice
    DORMANT = "DORMANT"  # none of these: a one-time buyer gone quiet


def buyer_key(secret: bytes, identity: str) -> str:
    """The buyer's pseudonym: `identity` is `p:<phone>`, `e:<email>` or `a:<account>`."""
    return hmac.new(secret, b"buyer:" + identity.encode(), hashlib.sha256).hexdigest()[:32]


def masked(identity: str | None) -> str | None:
    """What an operator may see of the identity: `138****8000`, `l***@example.cn`, `ab***`."""
    if identity is None:
        return None
    kind, _, value = identity.partition(":")
    if kind == "a":
        return value[:2] + "***"
    shown = mask_contacts(value)
    return shown if shown != value else value[:2] + "***"


@dataclass
class Figures:
    """One buyer's figures; `add` merges another part of them (the same buyer under another key)."""

    attempts: int = 0  # orders placed, whatever became of them
    orders: int = 0  # paid and not refunded
    first_at: datetime | None = None
    last_at: datetime | None = None
    coupon_orders: int = 0
    spent: Counter[str] = field(default_factory=Counter)  # currency -> minor units
    channels: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    reviews: int = 0
    rejects: int = 0
    fraud_labels: int = 0
    contact: str | None = None  # masked; None once erased

    def add(self, other: Figures) -> None:
        self.attempts += other.attempts
        self.orders += other.orders
        self.coupon_orders += other.coupon_orders
        self.spent.update(other.spent)
        self.channels.update(other.channels)
        self.categories.update(other.categories)
        self.reviews += other.reviews
        self.rejects += other.rejects
        self.fraud_labels += other.fraud_labels
        self.first_at = _earliest(self.first_at, other.first_at)
        self.last_at = _latest(self.last_at, other.last_at)
        self.contact = self.contact or other.contact


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((x for x in (a, b) if x is not None), default=None)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((x for x in (a, b) if x is not None), default=None)


def segment(figures: Figures, now: datetime) -> Segment:
    """The first that holds, in this order: suspicious, high value, new, active, at risk, dormant."""
    if figures.rejects or figures.fraud_labels or figures.reviews >= 2:
        return Segment.SUSPICIOUS
    if max(figures.spent.values(), default=0) >= HIGH_VALUE_FEN:
        return Segment.HIGH_VALUE
    if figures.first_at is not None and now - figures.first_at < NEW_FOR:
        return Segment.NEW
    if figures.last_at is not None and now - figures.last_at < ACTIVE_WITHIN:
        return Segment.ACTIVE
    if figures.orders >= 2 and figures.last_at is not None and now - figures.last_at >= AT_RISK_AFTER:
        return Segment.AT_RISK
    return Segment.DORMANT


def recency_days(figures: Figures, now: datetime) -> int | None:
    return None if figures.last_at is None else max(0, (now - figures.last_at).days)


def merged(parts: Iterable[tuple[str, Figures]]) -> dict[str, Figures]:
    found: dict[str, Figures] = {}
    for key, part in parts:
        found.setdefault(key, Figures()).add(part)
    return found
