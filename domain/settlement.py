"""Settlement rules: statement periods and states, what `net` means, and reconciliation. No I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from domain.money import Money, MoneyError, parse_amount

# Periods are whole days, weeks and months in Beijing time, where the channels settle.
SETTLEMENT_ZONE = timezone(timedelta(hours=8))

MAX_RECORDS = 10_000
MAX_ORDER_NUMBER = 128
MAX_STATUS = 32


class Party(enum.Enum):
    CHANNEL = "CHANNEL"
    SUPPLIER = "SUPPLIER"


class StatementStatus(enum.Enum):
    DRAFT = "DRAFT"
    CONFIRMED = "CONFIRMED"
    PAID = "PAID"


class Cycle(enum.Enum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"


def may_read_statement(role_is_admin: bool, partner_channel: str | None, party: Party, code: str) -> bool:
    """Operators read every statement; a partner its own channel's, never a supplier's."""
    if role_is_admin:
        return True
    return party is Party.CHANNEL and partner_channel is not None and partner_channel == code


class SettlementError(ValueError):
    def __init__(self, field: str | None, message: str, code: str = "INVALID_INPUT") -> None:
        super().__init__(message)
        self.field, self.message, self.code = field, message, code


def last_complete_period(cycle: Cycle, now: datetime, zone: tzinfo = SETTLEMENT_ZONE) -> tuple[datetime, datetime]:
    """The last day, week (Monday to Monday) or month that has ended by `now`, in `zone`
    (a channel's settlement time zone; Beijing time by default)."""
    local = now.astimezone(zone)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if cycle is Cycle.DAILY:
        return today - timedelta(days=1), today
    if cycle is Cycle.WEEKLY:
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(days=7), monday
    first = today.replace(day=1)
    previous = (first - timedelta(days=1)).replace(day=1)
    return previous, first


def in_zone(moment: datetime, time_zone: str) -> datetime:
    """A stored (UTC) moment as the wall clock of a statement's zone shows it: a Beijing
    month starts 2026-10-01T00:00:00+08:00, not 2026-09-30T16:00:00+00:00."""
    return moment.astimezone(ZoneInfo(time_zone))


def check_period(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise SettlementError("periodStart", "give times with a UTC offset")
    if not start < end:
        raise SettlementError("periodEnd", "the period ends after it starts")
    if end - start > timedelta(days=366):
        raise SettlementError("periodEnd", "a statement covers at most 366 days")


def next_status(current: StatementStatus, target: StatementStatus) -> None:
    """DRAFT → CONFIRMED → PAID, one step at a time."""
    allowed = {StatementStatus.DRAFT: StatementStatus.CONFIRMED, StatementStatus.CONFIRMED: StatementStatus.PAID}
    if allowed.get(current) is not target:
        raise SettlementError("id", f"a {current.value} statement cannot become {target.value}", "INVALID_STATE")


@dataclass(frozen=True, slots=True)
class Totals:
    """A statement's figures. gross = supplier_cost + commission + margin (of the deliveries).

    `refunds` is the gross refunded; refunded cost and commission come back with it.
    `prepaid` is the part of gross − refunds a channel already paid from its prepaid balance.
    `net` for a channel: what is still owed, gross − refunds − (commission − refunded
    commission) − prepaid; positive, the channel owes us; negative, we owe the channel.
    For a supplier: what its deliveries cost us, cost − refunded cost.
    """

    gross: Money
    supplier_cost: Money
    commission: Money
    margin: Money
    refunds: Money
    prepaid: Money
    net: Money
    order_count: int


def net_of(party: Party, channel_fen: int, commission_fen: int, supplier_fen: int, prepaid_fen: int = 0) -> int:
    """`net` from the sums of a statement's entries on each account (debit positive) and what
    the channel paid for them in advance from its balance."""
    if party is Party.CHANNEL:
        # The receivable less the commission it keeps, less what its balance already paid.
        return channel_fen + commission_fen - prepaid_fen
    return -supplier_fen


# --- reconciliation -----------------------------------------------------------------------


class Discrepancy(enum.Enum):
    MISSING_ON_THEIR_SIDE = "MISSING_ON_THEIR_SIDE"
    MISSING_ON_OUR_SIDE = "MISSING_ON_OUR_SIDE"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    STATUS_MISMATCH = "STATUS_MISMATCH"


@dataclass(frozen=True, slots=True)
class Record:
    """One order as a side reports it."""

    order_number: str
    amount: Money
    status: str


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # 1-based position among the records
    field: str
    message: str
    code: str = "INVALID_RECORD"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Discrepancy
    order_number: str
    ours: Record | None
    theirs: Record | None


def parse_record(row: int, order_number: str, amount: str, status: str, currency: str) -> Record | RowError:
    number = order_number.strip()
    if not 1 <= len(number) <= MAX_ORDER_NUMBER:
        return RowError(row, "externalOrderNumber", f"row {row}: an order number is 1 to {MAX_ORDER_NUMBER} characters")
    try:
        # A cell of the other side's file may carry spaces around it; the amount in it may not.
        money = Money.of(parse_amount(amount.strip()), currency)
    except MoneyError as error:
        return RowError(row, "amount", f"row {row}: {error}")
    label = status.strip().upper()
    if not 1 <= len(label) <= MAX_STATUS:
        return RowError(row, "status", f"row {row}: a status is 1 to {MAX_STATUS} characters")
    return Record(number, money, label)


def check_records(records: list[Record | RowError]) -> tuple[list[Record], list[RowError]]:
    """The records, or every row at fault: bad fields, an order number given twice, too many rows."""
    errors = [r for r in records if isinstance(r, RowError)]
    if len(records) > MAX_RECORDS:
        errors.insert(0, RowError(MAX_RECORDS + 1, "records", f"at most {MAX_RECORDS} records at a time", "TOO_MANY_RECORDS"))
    seen: set[str] = set()
    good: list[Record] = []
    for row, record in enumerate(records, start=1):
        if isinstance(record, RowError):
            continue
        if record.order_number in seen:
            errors.append(RowError(row, "externalOrderNumber", f"row {row}: order {record.order_number} is given twice", "DUPLICATE_RECORD"))
        seen.add(record.order_number)
        good.append(record)
    return good, sorted(errors, key=lambda e: e.row)


def reconcile(ours: list[Record], theirs: list[Record]) -> list[Finding]:
    """Every difference between the two sides, by order number."""
    mine = {r.order_number: r for r in ours}
    other = {r.order_number: r for r in theirs}
    findings: list[Finding] = []
    for number in sorted(mine.keys() | other.keys()):
        a, b = mine.get(number), other.get(number)
        if b is None:
            findings.append(Finding(Discrepancy.MISSING_ON_THEIR_SIDE, number, a, None))
        elif a is None:
            findings.append(Finding(Discrepancy.MISSING_ON_OUR_SIDE, number, None, b))
        else:
            if a.amount != b.amount:
                findings.append(Finding(Discrepancy.AMOUNT_MISMATCH, number, a, b))
            if a.status != b.status:
                findings.append(Finding(Discrepancy.STATUS_MISMATCH, number, a, b))
    return findings
