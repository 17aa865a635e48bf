"""Purchase limits (限购) and hold limits: who may buy how much, as pure rules.

A purchase limit caps what one buyer takes of a SKU on a channel: `per_order` units in one
order, `per_buyer` units over a period (a calendar day, week or month in Beijing time, or a
sale that started at a given moment). A hold limit caps the units one buyer holds in unpaid
orders at once, so that nobody parks a SKU's stock in orders they never mean to pay.

A buyer is every identity an order names, each counted on its own: the phone, the e-mail
address, the device and the recharge account, in their canonical forms. An order counts
against each of them and must fit under the cap of each. The client's address is a buyer
too, for callers from the public (anonymous, or a storefront key that ships inside an app):
for purchase limits only when the order names no phone, device or account (an e-mail costs
nothing to vary), and for holds always, under a cap of its own, because many honest buyers
share one address behind a carrier's NAT.

What a buyer has is kept as tallies (services/orders/tallies.py): one counter per scope (the
hold, or a SKU's limit for one period) and buyer identity, raised in the order's own
transaction by a statement that refuses to pass the cap.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

# Days, weeks and months of a limit are those of the shop's customers: Beijing time.
LIMIT_ZONE = timezone(timedelta(hours=8))
MAX_LIMIT = 1_000_000

PURCHASE_LIMIT = "PURCHASE_LIMIT"
HOLD_LIMIT = "HOLD_LIMIT"
HOLD_SCOPE = "hold"
# A campaign's uses per buyer count as tallies too (services/campaigns/coupons.py).
COUPON_SCOPE = "coupon:"
COUPON_LIMIT = "COUPON_LIMIT"


class Period(enum.Enum):
    DAY = "DAY"
    WEEK = "WEEK"  # Monday to Sunday
    MONTH = "MONTH"
    SALE = "SALE"  # from the limit's `starts_at` on


@dataclass(frozen=True, slots=True)
class PurchaseLimit:
    per_order: int | None
    per_buyer: int | None
    period: Period = Period.DAY
    starts_at: datetime | None = None  # SALE: purchases count from this moment

    def period_start(self, now: datetime) -> datetime:
        """When the period `now` falls in began: what the buyer's count starts from."""
        if self.period is Period.SALE:
            return self.starts_at or datetime(1970, 1, 1, tzinfo=UTC)
        day = now.astimezone(LIMIT_ZONE).replace(hour=0, minute=0, second=0, microsecond=0)
        if self.period is Period.WEEK:
            day -= timedelta(days=day.weekday())
        elif self.period is Period.MONTH:
            day = day.replace(day=1)
        return day.astimezone(UTC)

    def describe(self) -> str:
        per = {Period.DAY: "a day", Period.WEEK: "a week", Period.MONTH: "a month", Period.SALE: "during this sale"}
        return f"{self.per_buyer} per buyer {per[self.period]}"


class LimitError(ValueError):
    """A limit an operator cannot set; `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def check_limit(limit: PurchaseLimit) -> None:
    for field, value in (("perOrder", limit.per_order), ("perBuyer", limit.per_buyer)):
        if value is not None and not 1 <= value <= MAX_LIMIT:
            raise LimitError(field, f"a limit is 1 to {MAX_LIMIT:,} units, or null for none")
    if limit.period is Period.SALE and limit.starts_at is None:
        raise LimitError("startsAt", "a limit per sale counts from when the sale starts")


@dataclass(frozen=True, slots=True)
class HoldLimit:
    """Units one buyer may hold in unpaid orders at once; None: no cap."""

    per_buyer: int | None
    per_address: int | None

    @classmethod
    def of(cls, per_buyer: int | None, per_address: int | None) -> HoldLimit:
        """From settings, where 0 (or less) means no cap."""
        return cls(per_buyer if per_buyer and per_buyer > 0 else None, per_address if per_address and per_address > 0 else None)

    def over(self, channel: HoldLimit | None) -> HoldLimit:
        """A channel's own caps where it set them (0: none), these elsewhere."""
        if channel is None:
            return self
        return HoldLimit(
            self.per_buyer if channel.per_buyer is None else channel.per_buyer or None,
            self.per_address if channel.per_address is None else channel.per_address or None,
        )


@dataclass(frozen=True, slots=True)
class Identity:
    """Who an order is from, in canonical forms; `address` only for callers from the public."""

    phone: str | None = None
    email: str | None = None
    device: str | None = None
    account: str | None = None
    address: str | None = None

    def contacts(self) -> list[str]:
        named = (("phone", self.phone), ("email", self.email), ("device", self.device), ("account", self.account))
        return [f"{kind}:{value}" for kind, value in named if value]

    def buyers(self) -> list[str]:
        """The identities a purchase limit counts."""
        found = self.contacts()
        if self.address and not (self.phone or self.device or self.account):
            found.append(f"ip:{self.address}")
        return found


@dataclass(frozen=True, slots=True)
class Tally:
    """Units an order adds to one buyer's count in one scope, and the most that count may reach."""

    scope: str
    buyer: str
    units: int
    cap: int
    sku_id: int | None = None  # the SKU a purchase count is of; None for the hold

    @property
    def held(self) -> bool:
        """A hold ends when the order is paid; a purchase count only if the order ends unsold."""
        return self.scope == HOLD_SCOPE

    @property
    def key(self) -> tuple[str, str]:
        return (self.scope, self.buyer)


@dataclass(frozen=True, slots=True)
class Breach:
    code: str
    message: str
    sku_id: int | None  # the line at fault; None: the order as a whole


def purchase_scope(channel_id: int, sku_id: int, period_start: datetime) -> str:
    return f"sku:{channel_id}:{sku_id}:{period_start.astimezone(UTC):%Y%m%dT%H%M%S}"


_EVER = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
# Each limit's current scope, with the period it holds for: every order of a SKU on a channel
# names the same one all day (or week, month, sale), so it is worked out once per period.
_SCOPES: dict[tuple[int, int, Period, datetime | None], tuple[datetime, datetime, str]] = {}
_SCOPES_KEPT = 4096


def _next_start(limit: PurchaseLimit, start: datetime) -> datetime:
    """When the period that began at `start` ends (Beijing time keeps no daylight saving)."""
    if limit.period is Period.DAY:
        return start + timedelta(days=1)
    if limit.period is Period.WEEK:
        return start + timedelta(days=7)
    local = start.astimezone(LIMIT_ZONE)
    following = local.replace(year=local.year + 1, month=1) if local.month == 12 else local.replace(month=local.month + 1)
    return following.astimezone(UTC)


def current_scope(channel_id: int, sku_id: int, limit: PurchaseLimit, now: datetime) -> str:
    """`purchase_scope` of the period `now` falls in."""
    key = (channel_id, sku_id, limit.period, limit.starts_at)
    kept = _SCOPES.get(key)
    if kept is not None and now.tzinfo is not None and kept[0] <= now < kept[1]:
        return kept[2]
    start = limit.period_start(now)
    scope = purchase_scope(channel_id, sku_id, start)
    if now.tzinfo is not None:
        if len(_SCOPES) >= _SCOPES_KEPT:
            _SCOPES.clear()
        since, until = _EVER if limit.period is Period.SALE else (start, _next_start(limit, start))
        _SCOPES[key] = (since, until, scope)
    return scope


def tallies(
    quantities: Mapping[int, int],
    limits: Mapping[int, PurchaseLimit],
    hold: HoldLimit | None,
    who: Identity,
    *,
    channel_id: int,
    now: datetime,
) -> list[Tally] | Breach:
    """What an order adds to its buyers' counts, or the limit it breaks on its own.

    `quantities` are units per SKU (lines merged). A line over `per_order`, or over
    `per_buyer` before counting anything bought before, is refused here, before any write;
    what the buyer already has is for the counts' own statement to decide.
    """
    found: list[Tally] = []
    for sku_id, quantity in quantities.items():
        limit = limits.get(sku_id)
        if limit is None:
            continue
        if limit.per_order is not None and quantity > limit.per_order:
            return Breach(PURCHASE_LIMIT, f"at most {limit.per_order} of this SKU in one order", sku_id)
        if limit.per_buyer is None:
            continue
        if quantity > limit.per_buyer:
            return Breach(PURCHASE_LIMIT, f"this SKU is limited to {limit.describe()}", sku_id)
        scope = current_scope(channel_id, sku_id, limit, now)
        found.extend(Tally(scope, buyer, quantity, limit.per_buyer, sku_id) for buyer in who.buyers())
    if hold is not None:
        units = sum(quantities.values())
        held = [(buyer, hold.per_buyer) for buyer in who.contacts()]
        if who.address:
            held.append((f"ip:{who.address}", hold.per_address))
        for buyer, cap in held:
            if cap is None:
                continue
            if units > cap:
                return hold_breach(cap)
            found.append(Tally(HOLD_SCOPE, buyer, units, cap))
    return found


def hold_breach(cap: int) -> Breach:
    return Breach(HOLD_LIMIT, f"at most {cap} units may wait for payment at once: pay or cancel your open orders first", None)


def breach_of(tally: Tally, limits: Mapping[int, PurchaseLimit]) -> Breach:
    """Why a count refused the order's units."""
    if tally.scope.startswith(COUPON_SCOPE):
        return Breach(COUPON_LIMIT, f"this coupon is limited to {tally.cap} per buyer", None)
    if tally.held or tally.sku_id is None:
        return hold_breach(tally.cap)
    limit = limits[tally.sku_id]
    return Breach(PURCHASE_LIMIT, f"this SKU is limited to {limit.describe()}", tally.sku_id)


def merged(found: Iterable[Tally]) -> list[Tally]:
    """One tally per (scope, buyer), sorted so: the order every transaction locks them in.

    Lines come merged by SKU and identities are distinct, so keys rarely repeat; merging
    keeps the single statement that takes them valid anyway (it may touch a row once).
    """
    by_key: dict[tuple[str, str], Tally] = {}
    for tally in found:
        seen = by_key.get(tally.key)
        by_key[tally.key] = tally if seen is None else Tally(
            tally.scope, tally.buyer, seen.units + tally.units, min(seen.cap, tally.cap), tally.sku_id
        )
    return [by_key[key] for key in sorted(by_key)]
