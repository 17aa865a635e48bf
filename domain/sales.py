"""Sale events (预约抢购): a SKU's sale on a channel at a set time, as pure rules.

An operator schedules the sale: a start, an optional end, and an optional registration
window. Before the start nobody may buy the SKU on the channel; after the end nobody may
either, until the operator cancels the sale or schedules another. With a registration
window, buyers register first (each of the phone, e-mail, device and account they name, in
canonical form, as purchase limits count a buyer: domain/limits.py), and from the start only
an order naming a registered identity may buy, within the SKU's purchase limit. The window
closes at the start at the latest, so the set of registered buyers is final once the sale
runs. A cancelled sale no longer governs the SKU.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.limits import LIMIT_ZONE, Identity

SALE_NOT_STARTED = "SALE_NOT_STARTED"
SALE_ENDED = "SALE_ENDED"
NOT_REGISTERED = "NOT_REGISTERED"

# How far ahead a sale may be scheduled, how long it and its registration may run.
FURTHEST_START = timedelta(days=366)
LONGEST_SALE = timedelta(days=366)
LONGEST_REGISTRATION = timedelta(days=90)


class SaleState(enum.Enum):
    SCHEDULED = "SCHEDULED"  # before the start; registration (if any) not open now
    REGISTRATION_OPEN = "REGISTRATION_OPEN"  # before the start; buyers may register
    STARTED = "STARTED"
    ENDED = "ENDED"
    CANCELLED = "CANCELLED"

    @property
    def final(self) -> bool:
        return self in (SaleState.ENDED, SaleState.CANCELLED)


@dataclass(frozen=True, slots=True)
class Sale:
    id: int
    channel_id: int
    sku_id: int
    starts_at: datetime
    ends_at: datetime | None = None
    registration_opens_at: datetime | None = None  # both set, or both None: no registration
    registration_closes_at: datetime | None = None
    cancelled: bool = False

    @property
    def needs_registration(self) -> bool:
        return self.registration_closes_at is not None

    def state(self, now: datetime) -> SaleState:
        if self.cancelled:
            return SaleState.CANCELLED
        if self.ends_at is not None and now >= self.ends_at:
            return SaleState.ENDED
        if now >= self.starts_at:
            return SaleState.STARTED
        if self.registration_open(now):
            return SaleState.REGISTRATION_OPEN
        return SaleState.SCHEDULED

    def registration_open(self, now: datetime) -> bool:
        opens, closes = self.registration_opens_at, self.registration_closes_at
        return opens is not None and closes is not None and opens <= now < closes and not self.cancelled

    def seconds_to_start(self, now: datetime) -> int:
        """Whole seconds until the start, rounded up: 0 from the start on."""
        return max(0, math.ceil((self.starts_at - now).total_seconds()))


class SaleError(ValueError):
    """A sale command that cannot be done; `field` names the input at fault."""

    def __init__(self, field: str | None, message: str, code: str = "INVALID_SALE") -> None:
        super().__init__(message)
        self.field, self.message, self.code = field, message, code


def check_schedule(
    now: datetime, starts_at: datetime, ends_at: datetime | None,
    opens_at: datetime | None, closes_at: datetime | None,
) -> tuple[datetime | None, datetime | None]:
    """The registration window to store (None, None: no registration), or SaleError.

    A window given by one end only runs from now, or up to the start.
    """
    if starts_at <= now:
        raise SaleError("startsAt", "a sale starts in the future")
    if starts_at - now > FURTHEST_START:
        raise SaleError("startsAt", "a sale starts within a year")
    if ends_at is not None and ends_at <= starts_at:
        raise SaleError("endsAt", "a sale ends after it starts")
    if ends_at is not None and ends_at - starts_at > LONGEST_SALE:
        raise SaleError("endsAt", "a sale runs for a year at most")
    if opens_at is None and closes_at is None:
        return None, None
    opens = opens_at if opens_at is not None and opens_at > now else now
    closes = closes_at if closes_at is not None else starts_at
    if closes > starts_at:
        raise SaleError("registrationClosesAt", "registration closes at the start at the latest")
    if closes <= opens:
        field = "registrationClosesAt" if closes_at is not None else "registrationOpensAt"
        raise SaleError(field, "registration closes after it opens, and in the future")
    if closes - opens > LONGEST_REGISTRATION:
        raise SaleError("registrationOpensAt", "registration stays open for 90 days at most")
    return opens, closes


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str


def admission(sale: Sale, now: datetime, who: Identity, registered: frozenset[str] | None) -> Refusal | None:
    """Whether an order of the sale's SKU may go on; `registered` is read only when needed
    (a sale with registration that has started), else None."""
    state = sale.state(now)
    if state is SaleState.CANCELLED:
        return None
    if state is SaleState.ENDED:
        return Refusal(SALE_ENDED, "this sale has ended")
    if state is not SaleState.STARTED:
        return Refusal(SALE_NOT_STARTED, f"this sale starts at {beijing(sale.starts_at)}")
    if sale.needs_registration and not (registered or frozenset()).intersection(who.contacts()):
        return Refusal(NOT_REGISTERED, "only buyers who registered for this sale may buy it")
    return None


def beijing(moment: datetime) -> str:
    return moment.astimezone(LIMIT_ZONE).isoformat(timespec="seconds")


def tick_seconds(seconds_to_start: int) -> int:
    """How often a countdown is pushed: every second in the last minute, every ten seconds
    in the last ten minutes, every minute before."""
    if seconds_to_start <= 60:
        return 1
    return 10 if seconds_to_start <= 600 else 60
